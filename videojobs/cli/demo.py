"""`vjm demo`: a scripted lifecycle on a throwaway embedded Postgres, printing every event.

Two uploads go through the machine: one completes, one fails, is retried, hangs,
is reset by the stuck detector and finished by another worker; a late `complete`
from the hung worker is refused by attempt fencing. The projector then folds the
events into vjm.jobs and the projection is verified against a replay.
"""

from __future__ import annotations

import argparse
import sys
from uuid import UUID

from listeners import Projector, ProjectorConfig, StuckDetector, StuckDetectorConfig, verify_projections
from statemachine import InvalidTransition
from store import Event, EventStore, create_pool, prepare_event
from store.projections import fetch_jobs

from ..config import Settings
from ..database import provide_database

UPLOADS = {
    "alice": dict(original_filename="holiday.mp4", original_filesize=48_213_004, clip_count=3,
                  quality_preset="pro", enhancement_level="basic", platform_target="tiktok"),
    "bob": dict(original_filename="cooking.mov", original_filesize=120_554_112, clip_count=5,
                quality_preset="standard", enhancement_level="advanced", platform_target="youtube_shorts"),
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    parser = sub.add_parser("demo", help="run a scripted lifecycle on a throwaway embedded Postgres",
                            description=__doc__)
    parser.add_argument("--database-url", help="use this database instead of a throwaway embedded one")
    parser.set_defaults(handler=run)


def show(event: Event) -> None:
    """Print one stored event as a line of the history."""
    arrow = f"{event.from_state or '-':>10} -> {event.to_state:<10}"
    print(f"  #{event.position:<4} job …{str(event.job_id)[-6:]} v{event.version:<2} {event.type:<15} {arrow}"
          f" attempt {event.attempt}  by {event.actor}", flush=True)


async def run(args: argparse.Namespace) -> int:
    """Run the scenario; exit 0 when the projection verifies."""
    settings = Settings.from_env(database_url=args.database_url)
    print("vjm demo: starting PostgreSQL and migrating ...", flush=True)
    async with provide_database(settings, temporary=args.database_url is None) as url:
        pool = await create_pool(url, max_size=4)
        try:
            store = EventStore(pool)
            happy = await _happy_path(store)
            rough = await _rough_path(store, pool, url)
            return await _project_and_verify(url, pool, [happy, rough])
        finally:
            await pool.close()


async def _append(store: EventStore, trigger: str, data: dict, **kwargs) -> Event:
    event = await store.append(prepare_event(trigger, data, **kwargs))
    show(event)
    return event


async def _happy_path(store: EventStore) -> UUID:
    print("\nalice uploads holiday.mp4; worker-1 turns it into 3 TikTok clips")
    job = await _append(store, "create", UPLOADS["alice"], user_id="alice", actor="alice")
    start = await _append(store, "start", {"worker_id": "worker-1"}, job_id=job.job_id, actor="worker-1")
    for percent in (33.3, 66.7):
        await _append(store, "progress", {"percent": percent, "clips_done": round(percent / 33.3)},
                      job_id=job.job_id, attempt=start.attempt, actor="worker-1")
    paths = [f"/processed/{job.job_id}/clip{i}.mp4" for i in (1, 2, 3)]
    await _append(store, "complete", {"output_paths": paths, "processing_time": 120},
                  job_id=job.job_id, attempt=start.attempt, actor="worker-1")
    return job.job_id


async def _rough_path(store: EventStore, pool, url: str) -> UUID:
    print("\nbob uploads cooking.mov; the first try fails, the retry hangs and is rescued")
    job = await _append(store, "create", UPLOADS["bob"], user_id="bob", actor="bob")
    first = await _append(store, "start", {"worker_id": "worker-2"}, job_id=job.job_id, actor="worker-2")
    await _append(store, "fail", {"error": "Invalid video format"}, job_id=job.job_id, attempt=first.attempt,
                  actor="worker-2")
    await _append(store, "retry", {"reason": "re-encoded upload"}, job_id=job.job_id, actor="bob")
    hung = await _append(store, "start", {"worker_id": "worker-3"}, job_id=job.job_id, actor="worker-3")
    print("  ... worker-3 goes silent; the stuck detector runs with a zero-second timeout")
    async with Projector(ProjectorConfig(database_url=url, listen=False)) as projector:
        await projector.run_once()  # the detector scans the projection
    detector = StuckDetector(pool, StuckDetectorConfig(timeout=0))
    result = await detector.run_once()
    for event in await store.read_stream(job.job_id):
        if event.type == "time_out":
            show(event)
    print(f"  stuck detector reset {result.reset} job(s)")
    rescue = await _append(store, "start", {"worker_id": "worker-1"}, job_id=job.job_id, actor="worker-1")
    try:
        await store.append(prepare_event("complete", {"output_paths": ["/late.mp4"]}, job_id=job.job_id,
                                         attempt=hung.attempt, actor="worker-3"))
    except InvalidTransition as refused:
        print(f"  refused late complete from worker-3: {refused}")
    await _append(store, "complete", {"output_paths": [f"/processed/{job.job_id}/clip{i}.mp4" for i in range(1, 6)]},
                  job_id=job.job_id, attempt=rescue.attempt, actor="worker-1")
    return job.job_id


async def _project_and_verify(url: str, pool, job_ids: list[UUID]) -> int:
    async with Projector(ProjectorConfig(database_url=url, listen=False)) as projector:
        await projector.run_once()
    rows = await fetch_jobs(pool, job_ids)
    print("\nthe projection (vjm.jobs), folded from the events:")
    for job_id in job_ids:
        row = rows[job_id]
        print(f"  …{str(job_id)[-6:]} {row.user_id:<6} {row.status:<10} attempt {row.attempt}"
              f"  processing_time {row.processing_time or 0:>7.1f}s  outputs {len(row.output_paths or [])}")
    verdict = await verify_projections(url)
    print(f"\nprojection verified against a replay of every event: "
          f"{'ok' if verdict.ok else 'DIFFERENCES FOUND'} ({len(verdict.differences)} differences)")
    sys.stdout.flush()
    return verdict.exit_code
