"""Rebuild throughput: replay every event through the fold into shadow tables and merge them in.

Builds a log of `jobs` jobs, each create -> start -> progress -> complete (bulk creates in one
statement per chunk, transitions by concurrent writers through EventStore.append), projects it
once with the projector (incremental catch-up throughput), then times `rebuild_projections`
over identical tables and over emptied ones (events/s, target >= 20,000) and `verify_projections`.

`python -m bench.rebuild [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import time

from listeners import Projector, ProjectorConfig
from store import EventStore, connect, create_pool, prepare_event
from store.projections import rebuild_projections, verify_projections

from .common import run_standalone
from .projection_lag import DATA

STEPS = ("start", "progress", "complete")


async def build_log(url: str, jobs: int, writers: int = 16) -> int:
    """Append jobs * 4 events; returns how many."""
    pool = await create_pool(url, min_size=writers, max_size=writers)
    try:
        store = EventStore(pool)
        append = getattr(store, "append_creates", None) or store.append_many
        created = []
        for offset in range(0, jobs, 1000):
            batch = [prepare_event("create", DATA["create"], user_id=f"user{(offset + i) % 50}", actor="bench")
                     for i in range(min(1000, jobs - offset))]
            created += await append(batch)
        queue: asyncio.Queue = asyncio.Queue()
        for event in created:
            queue.put_nowait(event.job_id)
        await asyncio.gather(*(_advance(store, queue) for _ in range(writers)))
        return len(created) * (1 + len(STEPS))
    finally:
        await pool.close()


async def _advance(store: EventStore, queue: asyncio.Queue) -> None:
    while not queue.empty():
        job_id = queue.get_nowait()
        for trigger in STEPS:
            await store.append(prepare_event(trigger, DATA[trigger], job_id=job_id, actor="bench",
                                             attempt=None if trigger == "start" else 1))


async def run(url: str, smoke: bool) -> dict:
    jobs = 2_500 if smoke else 25_000
    started = time.perf_counter()
    events = await build_log(url, jobs)
    build_seconds = time.perf_counter() - started
    projector = Projector(ProjectorConfig(database_url=url, batch_size=5000))
    started = time.perf_counter()
    projected = await projector.run_once()
    project_seconds = time.perf_counter() - started
    await projector.stop()
    rebuild = await rebuild_projections(url)
    await _clear_read_models(url)
    from_empty = await rebuild_projections(url)
    started = time.perf_counter()
    verify = await verify_projections(url)
    verify_seconds = time.perf_counter() - started
    return {
        "benchmark": "rebuild", "smoke": smoke, "jobs": jobs, "events": events,
        "build_log_events_per_s": round(events / build_seconds, 1),
        "projector_catch_up_events_per_s": round(projected.events / project_seconds, 1),
        "rebuild_over_identical": _figures(rebuild),
        "rebuild_from_empty": _figures(from_empty),
        "verify": {"ok": verify.ok, "seconds": round(verify_seconds, 3),
                   "events_per_s": round(verify.events / verify_seconds, 1)},
        "target_events_per_s": 20_000,
    }


def _figures(result) -> dict:
    return {"events": result.events, "seconds": round(result.seconds, 3),
            "events_per_s": round(result.events_per_second, 1), "changed": result.changed}


async def _clear_read_models(url: str) -> None:
    """Empty the read models (bench only), so the next rebuild writes every row."""
    conn = await connect(url)
    try:
        await conn.execute("TRUNCATE vjm.jobs, vjm.job_stats, vjm.job_stats_daily")
    finally:
        await conn.close()


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
