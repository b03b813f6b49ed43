"""Long-lived sessions keep index plans as the tables grow from empty (cold start).

A prepared statement's generic plan is made once; made while vjm.jobs was empty,
`job_id = ANY($1)` is a sequential scan, and it stayed one as the table grew, so
the projector and the batch functions slowed down with every job added.
"""

from __future__ import annotations

from listeners.listening import connect_with_role
from store.queries import named_query

GROW = """
INSERT INTO vjm.jobs (job_id, user_id, status, attempt, attempts_left, max_attempts, original_filename,
                      original_filesize, clip_count, quality_preset, enhancement_level, platform_target,
                      progress_percent, clips_done, created_at, last_activity_at, version, last_position)
SELECT gen_random_uuid(), 'u', 'queued', 0, 3, 3, 'a.mp4', 1, 1, 'pro', 'basic', 'tiktok', 0, 0, now(), now(), 1, g
  FROM generate_series(1, 20000) g;
"""


async def test_the_projectors_session_plans_job_lookups_for_the_table_it_has_now(database_url: str, pool) -> None:
    conn = await connect_with_role(database_url, "vjm_projector")
    try:
        query = named_query("projection_batch_read").sql.strip().rstrip(";")
        await conn.execute(f"PREPARE read_batch(xid8, bigint, bigint) AS {query}")
        for _ in range(8):  # enough executions for PostgreSQL to settle on a generic plan
            await conn.execute("EXECUTE read_batch('0', 0, 1000)")  # a projector batch touches many jobs
        await pool.execute(GROW)  # no ANALYZE: nothing tells the cached plan that the table grew
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN EXECUTE read_batch('0', 0, 1000)"))
        assert not [line for line in plan.splitlines() if "Seq Scan on jobs" in line], plan
    finally:
        await conn.close()
