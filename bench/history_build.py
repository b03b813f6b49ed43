"""W7's dataset (bench/history_length.py): jobs with L events each, built on the server through the real append path.

As a trusted caller: one `vjm.append_creates` per chunk of 5,000 jobs, one `start` per job, then
L-2 `progress` events per job, each a `vjm.append_event` call. The progress events go as
set-based statements over a length's jobs and a range of steps (one transaction of about 20,000
events each), two connections at once, one for each half of the jobs: calls of one statement
run one after another, so each judges the head the one before left. Then the projector catches
up (`Projector.run_once`) and VACUUM ANALYZE. Every event is guarded, hash-chained and projected;
the lengths are checked (`history_at_start`: the shortest and longest stream of each length).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from listeners import Projector, ProjectorConfig

BATCH, GROWTH, WORKER = 32, 0.1, "bench-w7"
STEP_EVENTS = 20_000  # events per building statement (one transaction)

SCHEMA = """
CREATE SCHEMA bench_w7;
CREATE TABLE bench_w7.jobs (n integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, length integer NOT NULL,
                            kind text NOT NULL, job_id uuid NOT NULL DEFAULT gen_random_uuid());
GRANT USAGE ON SCHEMA bench_w7 TO vjm_admin;
GRANT SELECT ON bench_w7.jobs TO vjm_admin;
"""
IDS = "INSERT INTO bench_w7.jobs (length, kind) SELECT $1, $2 FROM generate_series(1, $3)"
CREATES = """
WITH chunk AS (SELECT n, job_id FROM bench_w7.jobs WHERE n BETWEEN $1 AND $2 ORDER BY n)
SELECT count(*) FROM vjm.append_creates(
    ARRAY(SELECT job_id FROM chunk),
    ARRAY(SELECT jsonb_build_object('original_filename', 'clip' || n || '.mp4', 'original_filesize', 10485760,
                                    'clip_count', 5, 'quality_preset', 'pro', 'enhancement_level', 'basic',
                                    'platform_target', 'tiktok', 'max_attempts', 3) FROM chunk),
    ARRAY(SELECT 'bench'::text FROM chunk), ARRAY(SELECT 'w7user' || (n % 20) FROM chunk),
    ARRAY(SELECT NULL::uuid FROM chunk))
"""
STARTS = """
SELECT count(*) FROM bench_w7.jobs i,
       LATERAL vjm.append_event(i.job_id, 'start', jsonb_build_object('worker_id', $2::text), $2) e
 WHERE i.n % 2 = $1
"""
# Steps $3..$4 of the jobs of length $1 in half $2: each call judges the head the one before left.
PROGRESS = """
SELECT count(*) FROM generate_series($3::integer, $4::integer) AS s
 CROSS JOIN LATERAL (SELECT j.job_id FROM bench_w7.jobs j WHERE j.length = $1 AND j.n % 2 = $2 ORDER BY j.n) i
 CROSS JOIN LATERAL vjm.append_event(i.job_id, 'progress', jsonb_build_object('percent', s % 100, 'clips_done', 2),
                                     $5, NULL, 1) e
"""

# Per length, the shortest and longest stream among its jobs (their head versions): the events per job.
LENGTHS_NOW = """
SELECT j.length, min(h.version) AS shortest, max(h.version) AS longest
  FROM bench_w7.jobs j
 CROSS JOIN LATERAL (SELECT e.version FROM vjm.job_events e WHERE e.job_id = j.job_id
                      ORDER BY e.version DESC LIMIT 1) h
 GROUP BY j.length ORDER BY j.length
"""


@dataclass
class Jobs:
    """The jobs of one history length: `work` stay processing (appends, batches, reads); `claim` jobs are given
    back and claimed again one at a time."""

    length: int
    work: list[UUID]
    claim: list[UUID]
    attempts: dict[UUID, int] = field(default_factory=dict)
    turn: dict[str, int] = field(default_factory=dict)

    def next(self, kind: str, jobs: list[UUID], step: int = 1) -> list[UUID]:
        """The next `step` of `jobs`, round robin per `kind`."""
        at = self.turn.get(kind, 0)
        self.turn[kind] = (at + step) % len(jobs)
        return [jobs[(at + i) % len(jobs)] for i in range(step)]


def job_counts(length: int, calls: dict[str, int], runs: int) -> tuple[int, int]:
    """Work and claim jobs for one length: enough that measuring adds at most GROWTH x length events to each."""
    rounds = runs + 1  # and the warm-up
    per_group = rounds * (calls["batch"] + calls["batch_sql"] + (calls["append"] + calls["append_sql"]) / BATCH)
    groups = math.ceil(per_group / (GROWTH * length))
    claims = max(4, math.ceil(2 * rounds * calls["claim"] / (GROWTH * length)))  # a release and a start each
    return BATCH * groups, claims


async def build(url: str, lengths: tuple[int, ...], calls: dict[str, int], runs: int) -> dict:
    """Every length's jobs, their histories built on the server, projected; how long each step took."""
    seconds = {}
    pool = await asyncpg.create_pool(url, min_size=2, max_size=2)
    try:
        started = time.perf_counter()
        await pool.execute(SCHEMA)
        for length in lengths:
            work, claim = job_counts(length, calls, runs)
            await pool.execute(IDS, length, "work", work)
            await pool.execute(IDS, length, "claim", claim)
        jobs = await pool.fetchval("SELECT count(*) FROM bench_w7.jobs")
        for low in range(1, jobs + 1, 5_000):
            await pool.fetchval(CREATES, low, min(jobs, low + 4_999))
        await asyncio.gather(*(_build_half(pool, half, lengths) for half in (0, 1)))
        seconds["append_s"] = time.perf_counter() - started
        events = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
        lengths_now = await pool.fetch(LENGTHS_NOW)
    finally:
        await pool.close()
    seconds |= await _project_and_vacuum(url)
    return {"jobs": jobs, "events": events, "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "append_events_per_s": round(events / seconds["append_s"]),
            "history_at_start": {str(r["length"]): [r["shortest"], r["longest"]] for r in lengths_now}}


async def _build_half(pool: asyncpg.Pool, half: int, lengths: tuple[int, ...]) -> None:
    """Start the half's jobs, then their progress events, chunk by chunk (one transaction each)."""
    async with pool.acquire() as conn:
        await conn.fetchval(STARTS, half, WORKER)
        for length in lengths:
            count = await conn.fetchval("SELECT count(*) FROM bench_w7.jobs WHERE length = $1 AND n % 2 = $2",
                                        length, half)
            steps = max(1, STEP_EVENTS // max(1, count))
            for low in range(1, length - 1, steps):
                await conn.fetchval(PROGRESS, length, half, low, min(length - 2, low + steps - 1), WORKER)


async def _project_and_vacuum(url: str) -> dict[str, float]:
    """Project every event (batches of 20,000), then VACUUM ANALYZE what the calls read."""
    started = time.perf_counter()
    projector = Projector(ProjectorConfig(database_url=url, batch_size=20_000, listen=False))
    await projector.run_once()
    await projector.stop()
    project_s = time.perf_counter() - started
    conn = await asyncpg.connect(url)
    try:
        for table in ("vjm.job_events", "vjm.jobs", "vjm.run_queue", "vjm.job_changes"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    return {"project_s": project_s, "vacuum_analyze_s": time.perf_counter() - started - project_s}


async def load_jobs(conn: asyncpg.Connection, lengths: tuple[int, ...]) -> dict[int, Jobs]:
    """Every length's jobs, by kind, in build order; each claim job on its first attempt."""
    rows = await conn.fetch("SELECT length, kind, job_id FROM bench_w7.jobs ORDER BY n")
    jobs = {length: Jobs(length, [], []) for length in lengths}
    for row in rows:
        getattr(jobs[row["length"]], row["kind"]).append(row["job_id"])
    for group in jobs.values():
        group.attempts = dict.fromkeys(group.claim, 1)
    return jobs
