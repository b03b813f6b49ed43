"""W5's queue: a million queued jobs of ten thousand users at three priorities, through the real write path.

`build` queues them through `vjm.append_creates` as the trusted owner, the arrays built on the
server (as bench/reads.py does), in chunks on two connections. Each run of `users` consecutive
jobs has one priority: 5% of the jobs 9, 25% 5, 70% 0, so every user has jobs at all three and the
fair turns interleave the users within each priority; presets, enhancement levels and platforms
cycle. The database issues the job ids (vjm.new_id, time-ordered), as it does for every client that
creates through the API. Random ids (as the first rounds named them) scattered every insert across
the log's (job_id, version) index, which no deployment does: on a 200,000-job queue a one-job claim
took 0.47 ms in the server against 0.35 ms with issued ids, and the queue was built at 3,600
creates/s against 9,200 (bench/README.md, "W5c, fourth round"). Then VACUUM ANALYZE, and a CHECKPOINT: the
build writes gigabytes of WAL, and the checkpoint it leaves running spreads its writes over minutes and ends in
fsyncs of every data file it wrote, which hold up commits' WAL flushes on a slow disk. Measured from inside that
checkpoint, the claims' tail was the build's (bench/README.md, "fifth session").
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

CHUNK = 10_000

CREATES = """
WITH chunk AS MATERIALIZED (
    SELECT n,
           CASE WHEN (n / $3) % 20 = 0 THEN 9 WHEN (n / $3) % 20 <= 5 THEN 5 ELSE 0 END AS priority
      FROM generate_series($1::integer, $2::integer) AS n)
SELECT count(*) FROM vjm.append_creates(
    ARRAY(SELECT NULL::uuid FROM chunk ORDER BY n),
    ARRAY(SELECT jsonb_build_object('original_filename', 'clip' || n || '.mp4', 'original_filesize', 10485760,
                                    'clip_count', 5,
                                    'quality_preset', (ARRAY['draft', 'standard', 'pro', 'ultra'])[1 + n % 4],
                                    'enhancement_level', (ARRAY['none', 'basic', 'advanced', 'maximum'])[1 + n % 4],
                                    'platform_target', (ARRAY['tiktok', 'instagram', 'youtube_shorts'])[1 + n % 3],
                                    'max_attempts', 3, 'priority', priority) FROM chunk ORDER BY n),
    ARRAY(SELECT 'bench'::text FROM chunk ORDER BY n),
    ARRAY(SELECT 'user' || (n % $3) FROM chunk ORDER BY n),
    ARRAY(SELECT NULL::uuid FROM chunk ORDER BY n))
"""

async def build(url: str, jobs: int, users: int, chunk: int = CHUNK) -> dict:
    """The queue: `jobs` creates through vjm.append_creates, `chunk` per statement, two connections; seconds."""
    pool = await asyncpg.create_pool(url, min_size=2, max_size=2)
    try:
        started = time.perf_counter()
        chunks = [(low, min(jobs, low + chunk) - 1) for low in range(0, jobs, chunk)]
        await asyncio.gather(*(_creates(pool, chunks[i::2], users) for i in range(2)))
        append_s = time.perf_counter() - started
        started = time.perf_counter()
        for table in ("vjm.run_queue", "vjm.job_events"):
            await pool.execute(f"VACUUM ANALYZE {table}")
        await pool.execute("CHECKPOINT")  # the build's I/O done before anything is measured (needs a superuser)
        vacuum_s = time.perf_counter() - started
        by_priority = {str(r[0]): r[1] for r in await pool.fetch(
            "SELECT priority, count(*) FROM vjm.run_queue WHERE queued GROUP BY priority ORDER BY priority")}
    finally:
        await pool.close()
    return {"jobs": jobs, "users": users, "queued_by_priority": by_priority, "append_s": round(append_s, 1),
            "vacuum_analyze_s": round(vacuum_s, 1), "creates_per_s": round(jobs / append_s)}


async def _creates(pool: asyncpg.Pool, chunks: list[tuple[int, int]], users: int) -> None:
    for low, high in chunks:
        await pool.fetchval(CREATES, low, high, users)
