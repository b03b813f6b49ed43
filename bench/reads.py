"""W5: reads at 1M jobs and ~3M events, through the VideoJobManager and as raw SQL.

The dataset is built by the real write path, on the server, so that building it is fast:
1. in chunks of 5,000 jobs (two connections in parallel): `vjm.append_creates` for the
   chunk (arrays built on the server), then each later transition of the chunk's jobs through
   `vjm.append_event`, one set-based statement per step: of every 20 jobs, 1 stays queued,
   1 stays processing, 2 fail, 16 complete, and 5 get a progress event (3.1 events per job);
3. the projector (`Projector.run_once`, batch 20,000) projects every event, then
   VACUUM ANALYZE (what autovacuum would have done on a live system).
So every event is a real, guarded, hash-chained event that the projector applied.

Then, interleaved (one warm-up, `runs` rounds, medians of each round's p50/p99):
- keyset page at depth: `get_user_jobs(user, limit=50, cursor=...)` at row `depth` of a user;
- OFFSET page at depth: `get_user_jobs(user, limit=50, offset=depth)`;
- stats: `get_job_stats(user_id=user)`;
- stuck scan: `store.projections.find_stuck_jobs(pool, 1 s, 100)`, the query the stuck
  detector runs (the manager has no read-only stuck scan; `reset_stuck_jobs` writes);
- history: `get_job_history(job_id)`.
Each also as raw SQL (the same named query, one asyncpg connection acting as the same
role), and EXPLAIN ANALYZE of each raw query is kept (first lines).

`python -m bench.reads [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable

import asyncpg

import videojobs
from listeners import Projector, ProjectorConfig
from store.identity import ADMIN, create_role_pool
from store.jobs import JobQuery, StatsScope
from store.projections import find_stuck_jobs
from store.queries import bind
from videojobs.connect import login_of
from videojobs.models import encode_cursor

from .common import interleaved_figures, percentile, run_standalone

TARGETS_MS = {"keyset_page": 2.0, "stats": 1.0, "stuck_scan": 1.0, "history": 1.0}
CHUNK = 5_000
PAGE = 50

IDS = """
CREATE SCHEMA bench_w5;
CREATE TABLE bench_w5.ids (n integer PRIMARY KEY, job_id uuid NOT NULL);
INSERT INTO bench_w5.ids SELECT n, gen_random_uuid() FROM generate_series(1, $1) AS n;
"""
CREATES = """
WITH chunk AS (SELECT n, job_id FROM bench_w5.ids WHERE n BETWEEN $1 AND $2 ORDER BY n)
SELECT count(*) FROM vjm.append_creates(
    ARRAY(SELECT job_id FROM chunk),
    ARRAY(SELECT jsonb_build_object('original_filename', 'clip' || n || '.mp4', 'original_filesize', 10485760,
                                    'clip_count', 5, 'quality_preset', 'pro', 'enhancement_level', 'basic',
                                    'platform_target', (ARRAY['tiktok', 'instagram', 'youtube_shorts'])[1 + n % 3],
                                    'max_attempts', 3) FROM chunk),
    ARRAY(SELECT 'bench'::text FROM chunk),
    ARRAY(SELECT 'user' || (n % $3) FROM chunk),
    ARRAY(SELECT NULL::uuid FROM chunk))
"""
# (trigger, data, which jobs by n % 20): 0 queued, 1 processing, 2-3 failed, 4-19 completed.
PHASES = [
    ("start", {"worker_id": "bench"}, "n % 20 <> 0"),
    ("progress", {"percent": 50.0, "clips_done": 2}, "n % 20 IN (1, 4, 5, 6, 7)"),
    ("fail", {"error": "encoder crashed"}, "n % 20 IN (2, 3)"),
    ("complete", {"output_paths": ["/out/1.mp4"], "processing_time": 12.5}, "n % 20 >= 4"),
]
TRANSITIONS = """
SELECT count(*) FROM bench_w5.ids i, LATERAL vjm.append_event(i.job_id, $3, $4::jsonb, 'bench') AS e
 WHERE i.n BETWEEN $1 AND $2 AND {where}
"""


async def build(url: str, jobs: int, users: int) -> dict:
    """The dataset; returns how long each step took and how many events there are."""
    timings = {}
    pool = await asyncpg.create_pool(url, min_size=2, max_size=2, init=_json_codec)
    try:
        started = time.perf_counter()
        await pool.execute(IDS.replace("$1", str(int(jobs))))
        chunks = [(low, min(jobs, low + CHUNK - 1)) for low in range(1, jobs + 1, CHUNK)]
        await asyncio.gather(*(_build_chunks(pool, chunks[i::2], users) for i in range(2)))
        timings["append_s"] = time.perf_counter() - started
        events = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    finally:
        await pool.close()
    started = time.perf_counter()
    projector = Projector(ProjectorConfig(database_url=url, batch_size=20_000, listen=False))
    projected = await projector.run_once()
    await projector.stop()
    timings["project_s"] = time.perf_counter() - started
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        for table in ("vjm.jobs", "vjm.job_events", "vjm.job_stats"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    timings["vacuum_analyze_s"] = time.perf_counter() - started
    return {"jobs": jobs, "users": users, "events": events, "projected_events": projected.events,
            "seconds": {k: round(v, 1) for k, v in timings.items()}, "total_s": round(sum(timings.values()), 1),
            "append_events_per_s": round(events / timings["append_s"]),
            "project_events_per_s": round(projected.events / timings["project_s"])}


async def _build_chunks(pool: asyncpg.Pool, chunks: list[tuple[int, int]], users: int) -> None:
    """Each chunk of jobs through its whole life, one statement (transaction) per step.

    Chunk by chunk, so that a job's events lie close together in commit order, as they
    do on a live system: the projector then folds most jobs once per batch.
    """
    for low, high in chunks:
        await pool.fetchval(CREATES, low, high, users)
        for trigger, data, where in PHASES:
            await pool.fetchval(TRANSITIONS.format(where=where), low, high, trigger, data)


async def _json_codec(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads)


async def latencies(call: Callable[[int], Awaitable[object]], calls: int) -> dict[str, float]:
    """p50/p99 in ms of `calls` sequential calls (call(i) for i in range(calls))."""
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await call(i)
        samples.append(1000 * (time.perf_counter() - started))
    return {"p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99)}


async def measure(url: str, manager, raw: asyncpg.Connection, users: int, depth: int, calls: int,
                  runs: int) -> dict:
    """Every read, through the manager and raw, interleaved."""
    names = [f"user{i}" for i in range(users)]
    cursors = {}
    for name in names[:20]:
        at, job_id = await raw.fetchrow("SELECT created_at, job_id FROM vjm.jobs WHERE user_id = $1 "
                                        "ORDER BY created_at DESC, job_id DESC OFFSET $2 LIMIT 1", name, depth - 1)
        cursors[name] = (at, job_id)
    keys = list(cursors)
    job_ids = [r[0] for r in await raw.fetch("SELECT job_id FROM vjm.jobs TABLESAMPLE SYSTEM (1) LIMIT 500")]
    random.Random(7).shuffle(job_ids)

    def user(i: int) -> str:
        return keys[i % len(keys)]

    reads: dict[str, Callable[[int], Awaitable[object]]] = {
        "keyset_page": lambda i: manager.get_user_jobs(user(i), PAGE, cursor=encode_cursor(*cursors[user(i)])),
        "keyset_page_raw": lambda i: raw.fetch(*_page(user(i), cursors[user(i)], 0)),
        "count_raw": lambda i: raw.fetchval(*_raw("job_count", **_filters(user(i)))),
        "offset_page": lambda i: manager.get_user_jobs(user(i), PAGE, offset=depth),
        "offset_page_raw": lambda i: raw.fetch(*_page(user(i), (None, None), depth)),
        "stats": lambda i: manager.get_job_stats(user_id=user(i)),
        "stats_raw": lambda i: raw.fetch(*_raw("job_stats_get", **_scope(user(i)), days=30)),
        "stuck_scan": lambda i: find_stuck_jobs(raw, 1.0, 100),  # the store function (the manager keeps its pools)
        "stuck_scan_raw": lambda i: raw.fetch(*_raw("job_get_stuck", timeout_seconds=1.0, limit=100)),
        "history": lambda i: manager.get_job_history(job_ids[i % len(job_ids)]),
        "history_raw": lambda i: raw.fetch(*_raw("event_get_stream", job_id=job_ids[i % len(job_ids)])),
    }
    result = await interleaved_figures({k: (lambda c=c: latencies(c, calls)) for k, c in reads.items()}, runs)
    explain = {
        "keyset_page": await _explain(raw, *_page(names[0], cursors[keys[0]], 0)),
        "count": await _explain(raw, *_raw("job_count", **_filters(keys[0]))),
        "offset_page": await _explain(raw, *_page(keys[0], (None, None), depth)),
        "stats": await _explain(raw, *_raw("job_stats_get", **_scope(keys[0]), days=30)),
        "stuck_scan": await _explain(raw, *_raw("job_get_stuck", timeout_seconds=1.0, limit=100)),
        "history": await _explain(raw, *_raw("event_get_stream", job_id=job_ids[0])),
    }
    return {"figures": {k: {m: round(v[m], 3) for m in ("p50_ms", "p99_ms")} for k, v in result.items()},
            "explain": explain}


def _raw(name: str, **params: object) -> tuple:
    """A named query's statement and its positional arguments: what a raw read hands asyncpg."""
    sql, args = bind(name, params)
    return (sql, *args)


def _filters(user_id: str) -> dict:
    """job_count's filters: one user's jobs, nothing else."""
    return dict(JobQuery(user_id=user_id).filters())


def _page(user_id: str, after: tuple, offset: int) -> tuple:
    """job_find_page for one user: keyset after `after` (created_at, job_id), or OFFSET `offset`."""
    return _raw("job_find_page", **_filters(user_id), after_created_at=after[0], after_job_id=after[1], limit=PAGE,
                offset=offset)


def _scope(user_id: str) -> dict:
    """The scope parameters of the job_stats_*_get queries for one user."""
    return StatsScope.one("user", user_id).params()


async def _explain(conn: asyncpg.Connection, sql: str, *args) -> list[str]:
    """The first lines of EXPLAIN (ANALYZE, BUFFERS) and its execution time."""
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    lines = [r[0] for r in rows]
    return lines[:6] + [line for line in lines[-2:] if "Time" in line]


def summary(figures: dict) -> dict:
    """Target checks: each target read's manager p99 against its target, and manager/raw."""
    rows = {}
    for read, target in TARGETS_MS.items():
        p99 = figures[read]["p99_ms"]
        rows[read] = {"p99_ms": p99, "raw_p99_ms": figures[f"{read}_raw"]["p99_ms"], "target_ms": target,
                      "ratio_to_target": round(p99 / target, 3), "met": p99 < target,
                      "manager_over_raw": round(p99 / figures[f"{read}_raw"]["p99_ms"], 2)}
    return rows


async def run(url: str, smoke: bool) -> dict:
    """The whole W5 workload on the (fresh, migrated) database at `url`."""
    jobs, users, depth, calls, runs = (20_000, 20, 500, 50, 3) if smoke else (1_000_000, 100, 5_000, 200, 3)
    dataset = await build(url, jobs, users)
    raw = (await create_role_pool(url, role=ADMIN, login=login_of(url), min_size=1, max_size=1))
    try:
        async with raw.acquire() as conn, videojobs.connect(url, listeners=False) as manager:
            measured = await measure(url, manager, conn, users, depth, calls, runs)
    finally:
        await raw.close()
    return {"benchmark": "reads", "workload": "W5 reads", "smoke": smoke, "runs": runs, "calls_per_run": calls,
            "depth": depth, "page": PAGE, "dataset": dataset, "targets": summary(measured["figures"]), **measured}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
