"""Long-lived sessions keep index plans as the tables grow from empty (cold start).

A prepared statement's generic plan is made once; made while vjm.jobs was empty,
`job_id = ANY($1)` is a sequential scan, and it stayed one as the table grew, so
the projector and the batch functions slowed down with every job added. Claims keep
one plan per session on purpose (sql/schema/063_claims.sql): it must be the index walk.
"""

from __future__ import annotations

from listeners.listening import connect_with_role
from store.identity import create_role_pool
from store.queries import named_query
from tests.support.factories import create_data
from tests.support.rows_read import RUN_QUEUE_ROWS_READ
from videojobs import VideoJobManager

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


async def test_a_processors_claims_planned_on_a_few_jobs_walk_the_index_at_20000(manager: VideoJobManager, pool,
                                                                                 database_url: str) -> None:
    """A processor session makes its claim plans (without and with caps) on a queue of a few jobs; the queue then
    grows to 20,000, with no ANALYZE: its next claims, capped or not, read a handful of run-queue rows. A plan made
    for a share of a small queue (a sort of the whole queue) would read all 20,000."""
    await pool.execute("ALTER TABLE vjm.run_queue SET (autovacuum_enabled = false)")  # no ANALYZE re-plans them
    await manager.bulk_create_jobs([create_data(user_id=f"u{i}") for i in range(6)])
    claimers = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=1)
    try:
        async with claimers.acquire() as conn:
            for capped in (False, True, False, True):  # the plans of both walks, made (and kept) on 6 jobs
                await _caps(manager, capped)
                assert len(await conn.fetch("SELECT job_id FROM vjm.claim_jobs($1, 1)", "w")) == 1
            for offset in range(0, 20_000, 5_000):
                await manager.bulk_create_jobs([create_data(user_id=f"u{i % 200}")
                                                for i in range(offset, offset + 5_000)])
            for capped in (False, True):
                await _caps(manager, capped)
                async with conn.transaction():
                    assert len(await conn.fetch("SELECT job_id FROM vjm.claim_jobs($1, 3)", "w")) == 3
                    assert await conn.fetchval(RUN_QUEUE_ROWS_READ) < 100, f"capped={capped}"
    finally:
        await claimers.close()


async def _caps(manager: VideoJobManager, capped: bool) -> None:
    """Each user capped at 5 processing, or no cap (removed when one is set)."""
    if capped:
        await manager.queue.set_cap("user", "*", 5)
    elif (await manager.queue.policy()).caps:
        await manager.queue.set_cap("user", "*", None)
