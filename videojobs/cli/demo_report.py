"""The demo's closing report: statistics, the workers, the rescued job, the cancel, what every job came to
(read back from the database), and both verifications. Exit 0 only when all of it holds."""

from __future__ import annotations

import sys
from collections import Counter
from uuid import UUID

from rich.console import Console

from ..manager import VideoJobManager
from .demo_actors import Cast
from .demo_story import Story
from .render import counters_table, history_table, platform_table, short_id

PAGE = 100


async def report(cast: Cast, story: Story, console: Console) -> int:
    """Print the report; 0 when the scenario happened as told and both verifications hold."""
    manager = cast.manager
    stats = await manager.get_job_stats()
    average = f"{stats.average_processing_time:.1f}s" if stats.average_processing_time is not None else "-"
    console.print()
    console.print(counters_table(stats, title="final statistics (vjm.job_stats)"))
    console.print(platform_table(stats))
    print(f"processing time: total {stats.total_processing_time:.1f}s, average {average} per finished job; "
          f"{cast.screen.changes} changes streamed on the change feed")
    console.print(cast.screen.workers_table(title="the workers at the end (the registry: manager.workers)"))
    problems = await _rescue_problems(story, console) + _cancel_problems(cast)
    problems += await _every_job_problems(cast)
    problems += [f"{name} exited {code} when stopped" for name, code in story.exit_codes.items() if code != 0]
    return await _verify(manager, problems)


async def _rescue_problems(story: Story, console: Console) -> list[str]:
    rescue = story.rescue
    if rescue.job_id is None or rescue.worker is None:
        return ["no worker froze"]
    events = await story.cast.manager.get_job_history(rescue.job_id)
    shown = [e for e in events if e.type != "progress"]
    console.print(history_table(shown, title=f"the rescued job {rescue.job_id} (without its "
                                             f"{len(events) - len(shown)} progress events)", compact=True))
    print(f"refused late complete from {rescue.worker.spec.name} (attempt {rescue.attempt}): {rescue.refusal}"
          if rescue.outcome == "refused" else f"late complete from the frozen worker: {rescue.outcome}")
    problems = []
    if not any(e.type == "time_out" and e.actor == "system:stuck_detector" and e.attempt == rescue.attempt
               for e in events):
        problems.append("the frozen worker's job was not timed out by the stuck detector")
    if rescue.rescued_by in (None, rescue.worker.spec.name):
        problems.append("the frozen job was not finished by another worker")
    if rescue.outcome != "refused":
        problems.append(f"the frozen worker's late complete was not refused ({rescue.outcome})")
    return problems


def _cancel_problems(cast: Cast) -> list[str]:
    cancellation = cast.cancellation
    line = cancellation.stop_line
    if cancellation.job_id is None or cancellation.cancelled_at is None or line is None:
        return [f"no job was cancelled mid-encode with its handler seen stopping ({cancellation.refused})"]
    latency = line["t"] - cancellation.cancelled_at
    print(f"cancel reached the running handler: {cancellation.owner} cancelled job {cancellation.job_id} "
          f"mid-encode; {line['worker']}'s handler stopped after {line['encoded']}/{line['clips']} clips "
          f"(asyncio.CancelledError) {latency:.3f}s later")
    return [f"the cancel took {latency:.2f}s to reach the handler"] if latency >= 1.0 else []


async def _every_job_problems(cast: Cast) -> list[str]:
    """Read back what every job came to: the cancelled one cancelled, every other completed by one complete."""
    manager = cast.manager
    statuses = await _statuses(manager)
    completes = Counter(e.job_id for e in await _events(manager, "complete"))
    counts = Counter(statuses.values())
    print(f"every job read back: {counts['completed']} completed, {counts['cancelled']} cancelled, "
          f"{counts['failed']} failed, {counts['queued'] + counts['processing']} unfinished; "
          f"{sum(completes.values())} complete events for {len(completes)} jobs; along the way "
          f"{len(await _events(manager, 'fail'))} failed attempts (retried by their owners), "
          f"{len(await _events(manager, 'requeue'))} requeue, {len(await _events(manager, 'time_out'))} time_out")
    wrong = [f"job {short_id(job_id)} ended {status} with {completes[job_id]} complete events"
             for job_id, status in statuses.items()
             if (status, completes[job_id]) != (("cancelled", 0) if job_id == cast.cancellation.job_id
                                                else ("completed", 1))]
    return wrong + ([] if len(statuses) == cast.created else [f"{len(statuses)} jobs read back, {cast.created} made"])


async def _statuses(manager: VideoJobManager) -> dict[UUID, str]:
    statuses: dict[UUID, str] = {}
    cursor = None
    while True:
        page = await manager.list_jobs(limit=PAGE, cursor=cursor)
        statuses.update({job.job_id: job.status for job in page.items})
        if not (cursor := page.next_cursor):
            return statuses


async def _events(manager: VideoJobManager, trigger: str) -> list:
    found, after = [], 0
    while True:
        page = await manager.audit.find_events(type=trigger, after=after, limit=PAGE)
        found += page.items
        if page.next_cursor is None:
            return found
        after = page.next_cursor


async def _verify(manager: VideoJobManager, problems: list[str]) -> int:
    for problem in problems:
        print(f"scenario problem: {problem}")
    history = await manager.audit.verify_history()
    chain = "ok" if history.ok else f"BROKEN at job {history.first_broken_job_id} v{history.first_broken_version}"
    print(f"audit chain verified: {chain} ({history.checked} events checked, {0 if history.ok else 1} broken links)")
    projections = await manager.maintenance.verify_projections()
    failures = (0 if history.ok else 1) + len(projections.differences) + len(problems)
    verdict = "ok" if projections.ok else "DIFFERENCES FOUND"
    print(f"projection verified against a replay of every event ({projections.events} events, "
          f"{projections.jobs} jobs): {verdict} ({len(projections.differences)} differences); "
          f"verification failures: {failures}")
    sys.stdout.flush()
    return 0 if failures == 0 else 1
