"""W1: transition writes per second, against raw asyncpg ceilings on a table of the same shape.

Each writer owns its jobs and walks them through create -> start -> progress -> progress
-> complete, one autocommit append per transition, through `EventStore.append` (the
same call the VideoJobManager makes). The ceilings insert rows of the same shape into
`bench_raw.job_events` (same columns, same indexes, no guard): one as a plain autocommit
INSERT, one as a single statement INSERT ... RETURNING plus pg_notify.

`vjm_combined` runs the same writers with their appends combined (store.write_combiner.WriteCombiner: what
arrives while a round is in flight goes in the next round, one vjm.append_events or create batch per round):
the ceilings still write one row per statement, as a caller without combining does.

vjm's doorbell rings only while a listener waits (sql/schema/050_locks_and_doorbell.sql), so it is measured
three ways: with nobody waiting (`vjm`); with a session holding the doorbell the whole
run, so that every append notifies as the ceiling does (`vjm_ringing`); and, at 8
connections, with the projector projecting in a process of its own (`vjm_projected`,
the production shape: it arms the doorbell whenever it has caught up).
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from store import EventStore, create_pool, prepare_event
from store.write_combiner import WriteCombiner

from .common import interleaved_figures, percentile, projector_process, run_standalone, wait_projected

CYCLE = ["create", "start", "progress", "progress", "complete"]
DATA: dict[str, dict[str, Any]] = {
    "create": {"original_filename": "clip.mp4", "original_filesize": 10_485_760, "clip_count": 5,
               "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"},
    "start": {"worker_id": "bench-worker"},
    "progress": {"percent": 50.0, "clips_done": 2},
    "complete": {"output_paths": ["/out/1.mp4", "/out/2.mp4"], "processing_time": 12.5},
}
STATES = {"create": (None, "queued"), "start": ("queued", "processing"), "progress": ("processing", "processing"),
          "complete": ("processing", "completed")}

RAW_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS bench_raw;
CREATE TABLE IF NOT EXISTS bench_raw.job_events (LIKE vjm.job_events INCLUDING DEFAULTS INCLUDING IDENTITY);
ALTER TABLE bench_raw.job_events ADD PRIMARY KEY (position);
CREATE UNIQUE INDEX IF NOT EXISTS raw_stream ON bench_raw.job_events (job_id, version);
CREATE INDEX IF NOT EXISTS raw_commit_order ON bench_raw.job_events (xact_id, position);
"""
RAW_COLUMNS = "(job_id, version, type, from_state, to_state, attempt, attempts_left, data, actor, user_id, hash)"
RAW_INSERT = f"INSERT INTO bench_raw.job_events {RAW_COLUMNS} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
RAW_INSERT_NOTIFY = (f"WITH ins AS ({RAW_INSERT} RETURNING position, job_id) "
                     "SELECT position, pg_notify('vjm_bench', position::text) FROM ins")


def _split(total: int, workers: int) -> list[int]:
    per = max(len(CYCLE), total // workers // len(CYCLE) * len(CYCLE))
    return [per] * workers


async def _vjm_writer(store: EventStore | WriteCombiner, ops: int, latencies: list[float]) -> None:
    """`ops` transitions through `store`, each one's latency (validation included) added to `latencies`."""
    job_id, attempt = None, None
    for i in range(ops):
        trigger = CYCLE[i % len(CYCLE)]
        started = time.perf_counter()
        event = await store.append(prepare_event(trigger, DATA[trigger], job_id=job_id, user_id="bench",
                                                 actor="bench", attempt=attempt))
        latencies.append(time.perf_counter() - started)
        job_id, attempt = event.job_id, event.attempt if trigger != "complete" else None
        if trigger == "complete":
            job_id = None


async def _raw_writer(pool: asyncpg.Pool, ops: int, statement: str, latencies: list[float]) -> None:
    job_id = uuid.uuid4()
    for i in range(ops):
        step = i % len(CYCLE)
        trigger = CYCLE[step]
        if step == 0:
            job_id = uuid.uuid4()
        from_state, to_state = STATES[trigger]
        started = time.perf_counter()
        digest = hashlib.sha256(f"{job_id}{step}".encode()).digest()
        await pool.fetchrow(statement, job_id, step + 1, trigger, from_state, to_state, 1, 2,
                            DATA[trigger], "bench", "bench", digest)
        latencies.append(time.perf_counter() - started)


async def _timed(total: int, writers: Callable[[list[float]], list[Awaitable[None]]]) -> dict[str, float]:
    """Transitions/s of the writers `writers(latencies)` makes, and their latency p50 and p99 (ms)."""
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*writers(latencies))
    elapsed = time.perf_counter() - started
    return {"per_s": total / elapsed, "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000}


async def measure(url: str, connections: int, ops: int, runs: int, with_projector: bool = False) -> dict:
    """Transitions/s and append latency of vjm (three ways) and of both ceilings at one connection count,
    interleaved."""
    pool = await create_pool(url, min_size=connections, max_size=connections)
    store = EventStore(pool)
    shares = _split(ops, connections)
    total = sum(shares)

    def raw(statement: str) -> Callable[[list[float]], list[Awaitable[None]]]:
        return lambda latencies: [_raw_writer(pool, n, statement, latencies) for n in shares]

    async def vjm() -> dict[str, float]:
        return await _timed(total, lambda latencies: [_vjm_writer(store, n, latencies) for n in shares])

    async def vjm_combined() -> dict[str, float]:  # the same writers, their appends combined (store.write_combiner)
        combiner = WriteCombiner(pool)
        return await _timed(total, lambda latencies: [_vjm_writer(combiner, n, latencies) for n in shares])

    async def vjm_ringing() -> dict[str, float]:
        holder = await asyncpg.connect(url)
        try:
            await holder.execute("SELECT vjm.hold_doorbell()")
            return await vjm()
        finally:
            await holder.close()

    try:
        result = await interleaved_figures({
            "vjm": vjm, "vjm_combined": vjm_combined, "vjm_ringing": vjm_ringing,
            "ceiling_insert": lambda: _timed(total, raw(RAW_INSERT)),
            "ceiling_insert_notify": lambda: _timed(total, raw(RAW_INSERT_NOTIFY))}, runs)
        projected = await _with_projector(url, vjm, runs) if with_projector else None
    finally:
        await pool.close()
    return _row(connections, total, result, projected)


def _row(connections: int, total: int, result: dict[str, dict], projected: float | None) -> dict:
    """One row of the report: rates, ratios to the ceilings, and latency p50/p99 per variant."""
    vjm_rate, ringing, combined = (result[k]["per_s"] for k in ("vjm", "vjm_ringing", "vjm_combined"))
    notify_ceiling, insert_ceiling = result["ceiling_insert_notify"]["per_s"], result["ceiling_insert"]["per_s"]
    row = {
        "connections": connections, "ops_per_run": total,
        "vjm_per_s": round(vjm_rate), "vjm_ringing_per_s": round(ringing),
        "ceiling_insert_per_s": round(insert_ceiling), "ceiling_notify_per_s": round(notify_ceiling),
        "ratio_vs_notify_ceiling": round(vjm_rate / notify_ceiling, 3),
        "ratio_vs_insert_ceiling": round(vjm_rate / insert_ceiling, 3),
        "ringing_ratio_vs_notify_ceiling": round(ringing / notify_ceiling, 3),
        "vjm_combined_per_s": round(combined),
        "combined_ratio_vs_notify_ceiling": round(combined / notify_ceiling, 3),
        "combined_ratio_vs_insert_ceiling": round(combined / insert_ceiling, 3),
        "combined_p99_vs_insert_p99": round(result["vjm_combined"]["p99_ms"] / result["ceiling_insert"]["p99_ms"], 3),
    }
    for name, figures in result.items():
        row |= {f"{name}_p50_ms": round(figures["p50_ms"], 3), f"{name}_p99_ms": round(figures["p99_ms"], 3)}
    if projected is not None:
        row |= {"vjm_projected_per_s": round(projected),
                "projected_ratio_vs_notify_ceiling": round(projected / notify_ceiling, 3)}
    return row


async def _with_projector(url: str, vjm: Callable[[], Awaitable[dict[str, float]]], runs: int) -> float:
    """vjm's rate while the projector projects every append in its own process (median of `runs`)."""
    conn = await asyncpg.connect(url)
    try:
        async with projector_process(url):
            await wait_projected(conn)
            rates = []
            for _ in range(runs):
                rates.append((await vjm())["per_s"])
                await wait_projected(conn)  # each run starts with the projector caught up and asleep
    finally:
        await conn.close()
    return statistics.median(rates)


async def projector_ratio(url: str, connections: int, ops: int, runs: int) -> dict:
    """vjm's rate without and with the projector projecting in its own process, rounds alternating
    (bench/projector_cost.py: what the projector costs writers)."""
    pool = await create_pool(url, min_size=connections, max_size=connections)
    store = EventStore(pool)
    shares = _split(ops, connections)
    total = sum(shares)

    async def vjm() -> dict[str, float]:
        return await _timed(total, lambda latencies: [_vjm_writer(store, n, latencies) for n in shares])

    without: list[float] = []
    projected: list[float] = []
    try:
        await vjm()  # warm-up
        for _ in range(runs):
            without.append((await vjm())["per_s"])
            projected.append(await _with_projector(url, vjm, 1))
    finally:
        await pool.close()
    rate, with_rate = statistics.median(without), statistics.median(projected)
    return {"connections": connections, "ops_per_run": total, "vjm_per_s": round(rate),
            "vjm_projected_per_s": round(with_rate), "ratio": round(with_rate / rate, 3),
            "samples_without": [round(x) for x in without], "samples_projected": [round(x) for x in projected]}


async def run(url: str, smoke: bool) -> dict:
    """The whole W1 workload on the (fresh, migrated) database at `url`."""
    ops, runs, counts = (500, 3, (1, 8)) if smoke else (4000, 3, (1, 8, 32))
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(RAW_SCHEMA)
    finally:
        await conn.close()
    rows = [await measure(url, c, ops, runs, with_projector=c == 8) for c in counts]
    return {"benchmark": "write_path", "workload": "W1 transition writes", "smoke": smoke,
            "runs": runs, "rows": rows}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
