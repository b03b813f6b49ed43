"""Raw SQL as the run-time roles: the grants and the append guard, not Python, decide."""

from __future__ import annotations

import asyncpg
import pytest

from store.identity import acting_as
from tests.support.tenants import Tenants

EVENT_ROW = ("(job_id, version, type, to_state, attempt, attempts_left, actor, user_id, hash)"
             " VALUES (gen_random_uuid(), 1, 'create', 'queued', 0, 3, 'x', 'alice', '\\x00')")


@pytest.mark.parametrize("statement", [
    f"INSERT INTO vjm.job_events {EVENT_ROW}",
    "UPDATE vjm.job_events SET actor = 'mallory'",
    "DELETE FROM vjm.job_events",
    "TRUNCATE vjm.job_events",
    "INSERT INTO vjm.jobs (job_id, user_id) SELECT job_id, user_id FROM vjm.jobs LIMIT 0",
    "DELETE FROM vjm.jobs",
    "INSERT INTO vjm.team_members (team_id, user_id) VALUES (gen_random_uuid(), 'w')",
    "ALTER TABLE vjm.job_events DISABLE ROW LEVEL SECURITY",
    "DROP TABLE vjm.job_events",
    "SET session_replication_role = replica",
    "SELECT vjm.current_team_ids()",
])
async def test_processor_cannot_touch_tables_directly(tenants: Tenants, processor_pool, pool, statement) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await processor_pool.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


@pytest.mark.parametrize("role", ["vjm_authenticated", "vjm_projector", "vjm_admin"])
async def test_no_runtime_role_inserts_events_directly(tenants: Tenants, pool, role: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {role}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"INSERT INTO vjm.job_events {EVENT_ROW}")


async def test_projector_cannot_append(tenants: Tenants, database_url: str) -> None:
    from store.identity import connect_as
    conn = await connect_as(database_url, role="vjm_projector")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchrow("SELECT * FROM vjm.append_event($1, 'time_out')", next(iter(tenants.jobs)))
    finally:
        await conn.close()


@pytest.mark.parametrize("data", [
    {"original_filename": "../../etc/passwd"},
    {"original_filename": "a\\b.mp4"},
    {"original_filename": "bell\x07.mp4"},
    {"platform_target": "myspace"},
    {"clip_count": 3, "injected": "x"},
    {"reason": "x" * 5000},
])
async def test_raw_sql_user_payloads_are_checked_by_the_database(tenants: Tenants, user_pool, pool, data) -> None:
    job = next(j for j, (u, t) in tenants.jobs.items() if u == "alice" and t is not None)  # failed
    trigger = "retry" if "reason" in data else "update_metadata"
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.fetchrow("SELECT * FROM vjm.append_event($1, $2, $3)", job, trigger, data)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_raw_sql_user_create_for_someone_else_is_refused(tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM vjm.append_creates($1, $2, $3, $4, $5)", [None],
                             [{"original_filename": "a.mp4"}], [None], ["bob"], [tenants.team1])
