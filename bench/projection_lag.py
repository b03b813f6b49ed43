"""Projection lag, measured end to end: writer commit -> vjm_jobs notice carrying a cursor at or past it.

1. Max write rate: `writers` connections walk jobs through create -> start -> progress -> complete,
   one autocommit append each, with no projector running.
2. Lag at 25%, 50% and 75% of the max rate (W4; the suite passes W1's best rate, a standalone
   run measures it as in 1.): the projector runs in its own process (LISTEN + 1 s polling, the
   defaults); writers pace themselves to that fraction of the max rate; a listener on vjm_jobs records when
   each notice arrives. An event's lag is the arrival time of the first notice whose cursor is
   at or past the event's cursor, minus the time its append returned (same process clock).
3. Bursts of 10,000 events (many concurrent writers, and one bulk statement): how many vjm_jobs
   notifications the projector sends for each.

`python -m bench.projection_lag [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import bisect
import statistics
import time
from typing import Any

import asyncpg

from listeners import parse_notice
from store import EventStore, connect, create_pool, prepare_event

from .common import projector_process, run_standalone, wait_projected

CYCLE = ("create", "start", "progress", "complete")
DATA = {
    "create": {"original_filename": "clip.mp4", "original_filesize": 10_485_760, "clip_count": 5,
               "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"},
    "start": {"worker_id": "bench"},
    "progress": {"percent": 50.0, "clips_done": 2},
    "complete": {"output_paths": ["/out/1.mp4"], "processing_time": 12.5},
}


async def _append_cycle_step(store: EventStore, step: int, head) -> Any:
    trigger = CYCLE[step % len(CYCLE)]
    fenced = trigger in ("progress", "complete")
    return await store.append(prepare_event(trigger, DATA[trigger], job_id=None if head is None else head.job_id,
                                            user_id=f"bench{step % 16}", actor="bench",
                                            attempt=head.attempt if fenced else None))


async def _writer(store: EventStore, until: float, interval: float, out: list) -> None:
    """Append until `until`; one append every `interval` seconds (0: as fast as possible)."""
    head, step, next_at = None, 0, time.monotonic()
    while (now := time.monotonic()) < until:
        if interval and now < next_at:
            await asyncio.sleep(next_at - now)  # pacing: open-loop schedule
        next_at += interval
        head = await _append_cycle_step(store, step, None if step % len(CYCLE) == 0 else head)
        out.append((time.monotonic(), head.cursor))
        step += 1


async def max_write_rate(url: str, writers: int, seconds: float) -> float:
    """Events per second that `writers` concurrent connections can append."""
    pool = await create_pool(url, min_size=writers, max_size=writers)
    try:
        out: list = []
        until = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(*(_writer(EventStore(pool), until, 0, out) for _ in range(writers)))
        return len(out) / (time.monotonic() - started)
    finally:
        await pool.close()


class NoticeLog:
    """Arrival times and cursors of vjm_jobs notices."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cursors: list[tuple[int, int]] = []
        self.count = 0

    def __call__(self, conn, pid, channel, payload) -> None:
        notice = parse_notice(payload)
        self.count += 1
        if notice is not None:
            self.times.append(time.monotonic())
            self.cursors.append(tuple(notice.cursor))

    def lag_of(self, committed_at: float, cursor: tuple[int, int]) -> float | None:
        index = bisect.bisect_left(self.cursors, cursor)
        return None if index == len(self.cursors) else max(0.0, self.times[index] - committed_at)


async def lag_at_rate(url: str, rate: float, writers: int, seconds: float, notices: NoticeLog,
                      control: asyncpg.Connection) -> dict:
    """p50/p99/max lag in ms with writers paced to `rate` events/s in total."""
    pool = await create_pool(url, min_size=writers, max_size=writers)
    try:
        out: list = []
        until = time.monotonic() + seconds
        await asyncio.gather(*(_writer(EventStore(pool), until, writers / rate, out) for _ in range(writers)))
    finally:
        await pool.close()
    await wait_projected(control, max(c for _, c in out))
    await control.execute("SELECT 1")  # let the last notices arrive
    lags = sorted(1000 * notices.lag_of(t, c) for t, c in out)
    achieved = len(out) / seconds
    return {"events": len(out), "rate_achieved": round(achieved, 1),
            # A loaded machine cannot hold the pace; then the lag figures measure the machine.
            "paced_as_planned": achieved >= 0.9 * rate,
            "p50_ms": round(statistics.median(lags), 2), "p99_ms": round(lags[int(0.99 * (len(lags) - 1))], 2),
            "max_ms": round(lags[-1], 2)}


async def burst_notifications(url: str, events: int, writers: int, notices: NoticeLog,
                              control: asyncpg.Connection, bulk: bool) -> dict:
    """vjm_jobs notifications sent while the projector absorbs a burst of `events` events."""
    before = notices.count
    started = time.monotonic()
    if bulk:
        store = EventStore(control)
        append = getattr(store, "append_creates", None) or store.append_many
        last = (await append([prepare_event("create", DATA["create"], user_id="burst") for _ in range(events)]))[-1]
        cursor = last.cursor
    else:
        pool = await create_pool(url, min_size=writers, max_size=writers)
        try:
            out: list = []
            await asyncio.gather(*(_count_writer(EventStore(pool), events // writers, out) for _ in range(writers)))
            cursor = max(c for _, c in out)
        finally:
            await pool.close()
    await wait_projected(control, cursor)
    await control.execute("SELECT 1")
    return {"events": events, "notifications": notices.count - before,
            "seconds_to_project": round(time.monotonic() - started, 3)}


async def _count_writer(store: EventStore, count: int, out: list) -> None:
    head = None
    for step in range(count):
        head = await _append_cycle_step(store, step, None if step % len(CYCLE) == 0 else head)
        out.append((0.0, head.cursor))


FRACTIONS = (0.25, 0.5, 0.75)
TARGET_P99_MS = 100.0  # at 50%


async def run(url: str, smoke: bool, max_rate: float | None = None) -> dict:
    """Lag at fractions of `max_rate` (W1's best; measured here when not given), then the bursts."""
    writers = 8 if smoke else 16
    seconds = 2.0 if smoke else 8.0
    measured = await max_write_rate(url, writers, seconds)
    max_rate = max_rate or measured
    control = await connect(url)
    notices = NoticeLog()
    try:
        await control.add_listener("vjm_jobs", notices)
        async with projector_process(url):
            await wait_projected(control)
            lags = {f"{int(f * 100)}%": await lag_at_rate(url, max_rate * f, writers, seconds, notices, control)
                    for f in FRACTIONS}
            burst_events = 2000 if smoke else 10_000
            burst = await burst_notifications(url, burst_events, 32, notices, control, bulk=False)
            bulk = await burst_notifications(url, burst_events, 1, notices, control, bulk=True)
    finally:
        await control.close()
    for fraction, lag in lags.items():
        lag["target_rate_events_per_s"] = round(max_rate * int(fraction[:-1]) / 100, 1)
        lag["p99_over_target"] = round(lag["p99_ms"] / TARGET_P99_MS, 3)
    return {"benchmark": "projection_lag", "workload": "W4 projection lag", "smoke": smoke, "writers": writers,
            "max_write_rate_events_per_s": round(max_rate, 1), "max_rate_measured_here": round(measured, 1),
            "lag_by_fraction_of_max": lags, "lag_at_half_max_rate": lags["50%"],
            "target_p99_ms_at_50": TARGET_P99_MS, "met": lags["50%"]["p99_ms"] < TARGET_P99_MS,
            "burst_concurrent": burst, "burst_bulk_statement": bulk}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
