"""W2: bulk create of 10k and 100k jobs, against `copy_records_to_table` of the same rows.

vjm: `VideoJobManager.bulk_create_jobs` (validated jobs, one `vjm.append_create_batch` statement
per call of at most 10,000 jobs, hash-chained create events, run-queue entries, Job models back)
and, as a second figure, `EventStore.append_creates` with up to 100,000 prepared events in one
statement (Event models back). Ceiling: asyncpg's binary COPY of rows of the same shape (same
columns, same indexes) into `bench_raw.job_events`; its rows and their sha256 are computed in the
client before the clock starts, so the ceiling times the COPY alone. Rows/s; the ratio is vjm / COPY.

`python -m bench.bulk_create [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import asyncpg

import videojobs
from store import EventStore, prepare_event

from .common import interleaved, run_standalone
from .write_path import RAW_SCHEMA

MANAGER_CHUNK = 10_000  # VideoJobManager's MAX_BULK
COPY_COLUMNS = ["job_id", "version", "type", "from_state", "to_state", "attempt", "attempts_left", "data", "actor",
                "user_id", "team_id", "hash"]
TARGET = 0.25


def job_spec(i: int) -> dict:
    """One job of the bulk request (the same fields for every system)."""
    return {"user_id": f"user{i % 50}", "original_filename": f"clip{i}.mp4", "original_filesize": 10_485_760,
            "clip_count": 5, "quality_preset": "pro", "enhancement_level": "basic",
            "platform_target": ("tiktok", "instagram", "youtube_shorts")[i % 3]}


def copy_rows(jobs: list[dict]) -> list[tuple]:
    """The rows COPY writes: what vjm stores for a create event, hash computed in the client."""
    rows = []
    for spec in jobs:
        data = {k: v for k, v in spec.items() if k != "user_id"} | {"max_attempts": 3}
        job_id = uuid.uuid4()
        digest = hashlib.sha256(f"{job_id}1create{json.dumps(data)}".encode()).digest()
        rows.append((job_id, 1, "create", None, "queued", 0, 3, data, "bench", spec["user_id"], None, digest))
    return rows


async def measure(url: str, manager: videojobs.VideoJobManager, pool: asyncpg.Pool, size: int, runs: int) -> dict:
    """Rows/s of bulk_create_jobs, append_creates and COPY for one batch size, interleaved."""
    jobs = [job_spec(i) for i in range(size)]
    store = EventStore(pool)

    async def vjm_manager() -> float:
        started = time.perf_counter()
        for offset in range(0, size, MANAGER_CHUNK):
            await manager.bulk_create_jobs(jobs[offset:offset + MANAGER_CHUNK])
        return size / (time.perf_counter() - started)

    async def vjm_store() -> float:
        events = [prepare_event("create", {k: v for k, v in j.items() if k != "user_id"}, user_id=j["user_id"],
                                actor="bench") for j in jobs]
        started = time.perf_counter()
        await store.append_creates(events)
        return size / (time.perf_counter() - started)

    async def copy() -> float:
        rows = copy_rows(jobs)
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("job_events", schema_name="bench_raw", records=rows,
                                             columns=COPY_COLUMNS)
        return size / (time.perf_counter() - started)

    result = await interleaved({"vjm": vjm_manager, "vjm_store": vjm_store, "copy": copy}, runs)
    vjm, ceiling = result["vjm"]["median"], result["copy"]["median"]
    return {"jobs": size, "vjm_rows_per_s": round(vjm), "vjm_store_rows_per_s": round(result["vjm_store"]["median"]),
            "copy_rows_per_s": round(ceiling), "ratio_vs_copy": round(vjm / ceiling, 3),
            "store_ratio_vs_copy": round(result["vjm_store"]["median"] / ceiling, 3), "target": TARGET,
            "met": vjm / ceiling >= TARGET,
            "samples": {k: [round(x) for x in v["samples"]] for k, v in result.items()}}


async def run(url: str, smoke: bool) -> dict:
    """The whole W2 workload on the (fresh, migrated) database at `url`."""
    sizes, runs = ((2_000, 10_000), 3) if smoke else ((10_000, 100_000), 3)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2, init=_codecs)
    try:
        async with pool.acquire() as conn:
            await conn.execute(RAW_SCHEMA)
        async with videojobs.connect(url, listeners=False) as manager:
            rows = [await measure(url, manager, pool, size, runs) for size in sizes]
    finally:
        await pool.close()
    return {"benchmark": "bulk_create", "workload": "W2 bulk create", "smoke": smoke, "runs": runs, "rows": rows}


async def _codecs(conn: asyncpg.Connection) -> None:
    # COPY is binary: jsonb's binary form is a version byte (1) and the text.
    await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                              encoder=lambda value: b"\x01" + json.dumps(value).encode(),
                              decoder=lambda raw: json.loads(raw[1:]))


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
