"""Heartbeat cost: what 1,000 running jobs with a 3 s lease write per second, and that none of it is an event.

One `videojobs.Worker` (concurrency 1,000, `lease_seconds=3`) claims 1,000 jobs whose handler
waits; the projector runs in a process of its own. Once every job has started (and one second
more), for `window` seconds:

- lease renewals: every renewal sets the lease row's `renewed_at`; the benchmark reads
  `(job_id, renewed_at)` of `vjm.leases` every 0.2 s (a renewal stays visible for a third of a
  lease, 1 s) and counts the distinct pairs inside the window: row updates per second;
- renewal calls: the worker's calls of `manager.processors.renew_leases` (one statement and
  one commit each), counted and timed in this process (round trip, ms);
- registry beats: `vjm.workers.last_seen_at` moves once per beat (counted the same way);
- events: rows of `vjm.job_events` in the window; a heartbeat is never an event, so 0.

The reference is the design: each lease renewed every third of its length, so 1,000 jobs / 1 s =
1,000 row updates per second in about one statement per second. The ratio is measured / design.

`python -m bench.heartbeat [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

import videojobs

from .bulk_create import job_spec
from .common import projector_process, run_standalone

JOBS, LEASE = 1_000, 3.0
POLL = 0.2


class CallCounter:
    """Wraps a coroutine function: how often it was called, and how long its calls took."""

    def __init__(self, function) -> None:
        self.function, self.calls, self.seconds = function, 0, 0.0

    async def __call__(self, *args, **kwargs):
        began = time.perf_counter()
        try:
            return await self.function(*args, **kwargs)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - began


async def watch(conn: asyncpg.Connection, window: float) -> dict:
    """Count lease renewals, registry beats and events during `window` seconds, by polling the tables."""
    start = await conn.fetchval("SELECT clock_timestamp()")
    renewals: set[tuple] = set()
    beats: set = set()
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        renewals |= {tuple(r) for r in await conn.fetch(
            "SELECT job_id, renewed_at FROM vjm.leases WHERE renewed_at > $1", start)}
        beats |= {r[0] for r in await conn.fetch("SELECT last_seen_at FROM vjm.workers WHERE last_seen_at > $1",
                                                 start)}
        await asyncio.sleep(POLL)
    end = await conn.fetchval("SELECT clock_timestamp()")
    events = await conn.fetchval("SELECT count(*) FROM vjm.job_events WHERE occurred_at > $1 AND occurred_at <= $2",
                                 start, end)
    seconds = (end - start).total_seconds()
    return {"seconds": round(seconds, 2), "lease_updates": sum(1 for _, at in renewals if at <= end),
            "registry_beats": sum(1 for at in beats if at <= end), "events": events}


async def measure(url: str, manager: videojobs.VideoJobManager, window: float) -> dict:
    await manager.bulk_create_jobs([job_spec(i) for i in range(JOBS)])
    worker = videojobs.Worker(manager=manager, concurrency=JOBS, lease_seconds=LEASE)
    release = asyncio.Event()

    @worker.handler
    async def hold(job, ctx) -> list[str]:
        await release.wait()
        return ["/out/1.mp4"]

    counter = manager.processors.renew_leases = CallCounter(manager.processors.renew_leases)
    running = asyncio.create_task(worker.run(handle_signals=False))
    started = worker.signals.started
    await started.next(lambda _: started.count >= JOBS, timeout=120)
    await asyncio.sleep(1.0)
    conn = await asyncpg.connect(url)
    try:
        calls_before, seconds_before = counter.calls, counter.seconds
        seen = await watch(conn, window)
        calls, call_seconds = counter.calls - calls_before, counter.seconds - seconds_before
    finally:
        await conn.close()
    release.set()
    await worker.signals.ended.next(lambda _: worker.signals.ended.count >= JOBS, timeout=120)
    worker.stop()
    await running
    return _figures(seen, calls, call_seconds)


def _figures(seen: dict, calls: int, call_seconds: float) -> dict:
    seconds = seen["seconds"]
    design = JOBS / (LEASE / 3)
    updates = seen["lease_updates"] / seconds
    return {"jobs": JOBS, "lease_seconds": LEASE, "window_s": seconds,
            "lease_updates_per_s": round(updates, 1), "design_updates_per_s": design,
            "ratio_to_design": round(updates / design, 3),
            "renew_calls_per_s": round(calls / seconds, 2),
            "renew_call_ms": round(1000 * call_seconds / calls, 2) if calls else None,
            "registry_beats_per_s": round(seen["registry_beats"] / seconds, 2),
            "events_in_window": seen["events"]}


async def run(url: str, smoke: bool) -> dict:
    """One measurement window: 30 s (smoke: 6 s)."""
    window = 6.0 if smoke else 30.0
    async with projector_process(url), videojobs.connect(url, listeners=False) as opened:
        figures = await measure(url, opened.as_service("worker:bench"), window)
    return {"benchmark": "heartbeat", "workload": "heartbeat cost", "smoke": smoke, **figures,
            "met": figures["events_in_window"] == 0}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
