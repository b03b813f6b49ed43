"""`vjm demo`: three users, two teams, 50 uploads and four processors on a throwaway PostgreSQL.

About a minute, start to finish: uploads arrive (in bulk, then one by one),
four simulated processors claim them and report progress clip by clip, some
jobs fail (and a few are retried by their owners), one user cancels a job, and
one processor hangs: the stuck detector (3 s timeout for the demo) re-queues its
job, another processor finishes it, and attempt fencing refuses the hung
processor's late `complete`. The projector keeps vjm.jobs and the statistics
up to date from the events all along. At the end: the statistics, the rescued
job's history, the audit-chain verification and the projection verification.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from rich.live import Live

from ..config import Settings
from ..connect import connect
from ..database import probe_database, provide_database
from ..errors import DatabaseUnavailable
from ..logs import configure_logging
from ..manager import VideoJobManager
from .demo_actors import WORKERS, Cast, Processor
from .demo_screen import DemoScreen
from .render import counters_table, history_table, make_console, platform_table

STUCK_TIMEOUT = 3.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    parser = sub.add_parser("demo", help="watch the whole system work for about a minute (throwaway Postgres)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", metavar="URL",
                        help="use this (empty or migrated) database instead of a throwaway embedded one")
    parser.add_argument("--pace", type=float, default=1.0, help=argparse.SUPPRESS)  # <1 runs faster (tests)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Run the scenario; exit 0 when everything verifies."""
    if args.log_level is None:
        configure_logging("ERROR")
    console = make_console()
    where = "the database at --database-url" if args.database_url else "a throwaway embedded PostgreSQL 16"
    print(f"vjm demo: starting {where} and migrating ...", flush=True)
    if args.database_url:
        await probe_database(args.database_url)
    settings = Settings.from_env().model_copy(update={"database_url": args.database_url})  # never VJM_DATABASE_URL
    async with provide_database(settings, temporary=args.database_url is None) as url:
        screen = DemoScreen(console, database="embedded PostgreSQL (throwaway)" if not args.database_url
                            else "PostgreSQL at --database-url")
        # connect() as every user of vjm: the projector and a stuck detector with the demo's short
        # timeout run in this process.
        demo = Settings(database_url=url, stuck_timeout_seconds=STUCK_TIMEOUT, stuck_interval_seconds=0.5)
        async with connect(settings=demo) as manager, _change_counter(manager, screen):
            cast = Cast(manager, screen, pace=max(0.05, args.pace))
            await _play(cast)
            return await _report(cast, console)


@contextlib.asynccontextmanager
async def _change_counter(manager: VideoJobManager, screen: DemoScreen):
    """Counts the change feed's rows on the screen while the demo runs."""
    feed = manager.subscriptions.subscribe(after=0, poll_interval=0.5)
    counter = asyncio.create_task(_count_changes(feed, screen))
    try:
        yield
    finally:
        await feed.close()
        counter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counter


async def _count_changes(feed, screen: DemoScreen) -> None:
    async for _change in feed:
        screen.changes += 1


async def _play(cast: Cast) -> None:
    """Users upload, processors work; the screen follows until every job has settled."""
    screen = cast.screen
    await cast.create_teams()
    await cast.upload_first_wave()
    processors = [Processor(name, cast) for name in WORKERS]
    screen.note(f"{len(processors)} processors start claiming jobs (claim_jobs: oldest first, never twice); "
                f"the stuck detector resets jobs idle for {STUCK_TIMEOUT:g}s")
    tasks = [asyncio.create_task(p.run()) for p in processors]
    tasks.append(asyncio.create_task(cast.upload_the_rest()))
    with _screen(screen) as live:
        await _follow(cast, tasks, live)
        for processor in processors:
            await asyncio.gather(*processor.background)
        if not await cast.manager.maintenance.wait_for_projection(timeout=30):  # every event is in the projection
            raise DatabaseUnavailable("the projector did not catch up with the log within 30 s")
        screen.stats = await cast.manager.get_job_stats()
        if live is not None:
            live.update(screen.render())
    screen.note(f"all {cast.created} jobs settled; projector caught up")


@contextlib.contextmanager
def _screen(screen: DemoScreen):
    if not screen.live:
        yield None
        return
    with Live(screen.render(), console=screen.console, refresh_per_second=8, transient=False) as live:
        yield live


async def _follow(cast: Cast, tasks: list[asyncio.Task], live: Live | None) -> None:
    """Refresh counters and the screen until the scenario's tasks are done (plain mode: a line every 5 s)."""
    screen, last_line = cast.screen, 0.0
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, timeout=0.25)
        for task in done:
            task.result()  # a failing actor ends the demo with its error
        screen.stats = await cast.manager.get_job_stats()
        if live is not None:
            live.update(screen.render())
        elif screen.elapsed() - last_line >= 5:
            last_line = screen.elapsed()
            print(f"[{last_line:5.1f}s] {screen.status_line()}", flush=True)


async def _report(cast: Cast, console) -> int:
    """Statistics, the rescued job's history, then both verifications; 0 when all hold."""
    manager, rescue = cast.manager, cast.rescue
    stats = await manager.get_job_stats()
    average = f"{stats.average_processing_time:.1f}s" if stats.average_processing_time is not None else "-"
    console.print()
    console.print(counters_table(stats, title="final statistics (vjm.job_stats)"))
    console.print(platform_table(stats))
    print(f"processing time: total {stats.total_processing_time:.1f}s, average {average} per finished job; "
          f"{cast.screen.changes} changes streamed on the change feed")
    problems = _scenario_problems(cast)
    if rescue.job_id:
        console.print(history_table(await manager.get_job_history(rescue.job_id),
                                    title=f"the rescued job {rescue.job_id}", compact=True))
        print(f"refused late complete from the hung worker (attempt {rescue.attempt}): {rescue.refusal}")
    return await _verify(manager, problems)


def _scenario_problems(cast: Cast) -> list[str]:
    rescue, problems = cast.rescue, []
    if rescue.job_id is None or rescue.rescued_by is None:
        problems.append("the hung job was not rescued")
    if rescue.refusal is None or rescue.refusal.startswith("ACCEPTED"):
        problems.append("the hung worker's late complete was not refused")
    return problems


async def _verify(manager: VideoJobManager, problems: list[str]) -> int:
    history = await manager.audit.verify_history()
    chain = "ok" if history.ok else f"BROKEN at job {history.first_broken_job_id} v{history.first_broken_version}"
    print(f"audit chain verified: {chain} ({history.checked} events checked, {0 if history.ok else 1} broken links)")
    projections = await manager.maintenance.verify_projections()
    for problem in problems:
        print(f"scenario problem: {problem}")
    failures = (0 if history.ok else 1) + len(projections.differences) + len(problems)
    verdict = "ok" if projections.ok else "DIFFERENCES FOUND"
    print(f"projection verified against a replay of every event ({projections.events} events, "
          f"{projections.jobs} jobs): {verdict} ({len(projections.differences)} differences); "
          f"verification failures: {failures}")
    sys.stdout.flush()
    return 0 if failures == 0 else 1
