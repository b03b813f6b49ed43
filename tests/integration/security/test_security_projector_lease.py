"""Projector leadership cannot be squatted (issue 15, finding 4).

It used to be a session advisory lock, `(1986359920, hashtext('vjm_projector:main'))`,
and any session could take that key first: no projector ever led again, and nothing
was logged. Leadership is now a lease row in vjm.projector_leases that only
vjm_projector may write (sql/schema/050_locks_and_doorbell.sql). Every other role tries
every door it has (the old key, the lease functions, the table itself) and the
projector, running as vjm_projector, still leads and projects. A lease that someone
legitimately holds is logged by the standby with the holder's pid, and a holder that
stops renewing loses it after its ttl.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from structlog.testing import capture_logs

from listeners import Projector, ProjectorConfig
from store import EventStore, prepare_event
from store.identity import connect_as
from tests.support.factories import create_data
from tests.support.waiting import eventually

OLD_LEADER_KEY = "SELECT pg_try_advisory_lock(1986359920, hashtext('vjm_projector:main'))"
ATTEMPTS = [
    "SELECT vjm.try_lead_projector('main')",
    "SELECT vjm.try_lead_projector('main', interval '1 day')",
    "SELECT vjm.stop_leading_projector('main')",
    "UPDATE vjm.projector_leases SET holder_pid = pg_backend_pid(), expires_at = 'infinity'",
    "INSERT INTO vjm.projector_leases (name) VALUES ('squatted')",
    "DELETE FROM vjm.projector_leases",
    "SELECT * FROM vjm.projector_leases FOR UPDATE",
    "SELECT * FROM vjm.projector_leases FOR KEY SHARE",
    "LOCK TABLE vjm.projector_leases IN ACCESS EXCLUSIVE MODE",
    "TRUNCATE vjm.projector_leases",
    "SELECT vjm.try_lead_projector('main', interval '30 seconds', 'squatter:1')",
    "SELECT vjm.check_in_projector('main', 'squatter:1')",
    "INSERT INTO vjm.projector_candidates (name, backend_pid, login, server_started, seen_at) "
    "VALUES ('main', pg_backend_pid(), 10, now(), now())",
    "UPDATE vjm.projector_candidates SET seen_at = now()",
    "DELETE FROM vjm.projector_candidates",
    "SELECT * FROM vjm.projector_candidates FOR UPDATE",
]


async def _connect(database_url: str, role: str | None) -> asyncpg.Connection:
    """A session as `role`: vjm_app with SET ROLE; vjm_admin (not granted to vjm_app) from the superuser."""
    if role == "vjm_admin":
        conn = await asyncpg.connect(database_url)
        await conn.execute("SET ROLE vjm_admin")
        return conn
    return await connect_as(database_url, role=role)


@pytest.fixture
async def squatters(database_url: str) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    """One open session per role that is not the projector, each holding the old leader key."""
    conns: dict[str, asyncpg.Connection] = {}
    try:
        for role in ("vjm_authenticated", "vjm_processor", "vjm_admin", None):
            conn = conns[role or "vjm_app"] = await _connect(database_url, role)
            await conn.fetchval(OLD_LEADER_KEY)  # the first one gets it (pg_try_advisory_lock is PUBLIC)
        yield conns
    finally:
        for conn in conns.values():
            await conn.close()


async def test_no_other_role_can_take_the_projectors_leadership(database_url: str, pool, squatters) -> None:
    held = await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1986359920 "
                               "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
    assert held == 1, "a squatter holds the old leader key for the whole test"
    for conn in squatters.values():
        for statement in ATTEMPTS:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():  # inside a transaction, as a squatter would hold a row lock
                    await conn.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM vjm.projector_leases WHERE holder_pid IS NOT NULL") == 0

    projector = Projector(ProjectorConfig(database_url=database_url, role="vjm_projector", poll_interval=0.05,
                                          takeover_interval=0.05))
    try:
        await projector.start()
        job = await EventStore(pool).append(prepare_event("create", create_data(), user_id="alice"))
        await eventually(lambda: projector.is_leader)
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM vjm.jobs WHERE job_id = $1", job.job_id))
        lease = await pool.fetchrow("SELECT holder_pid, vjm.projector_lease_live(l) AS live "
                                    "FROM vjm.projector_leases l WHERE name = 'main'")
        assert (lease["holder_pid"], lease["live"]) == (projector.backend_pid, True)
        # While it leads, the squatters still cannot touch the lease.
        for conn in squatters.values():
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE vjm.projector_leases SET holder_pid = NULL")
        assert await pool.fetchval("SELECT holder_pid FROM vjm.projector_leases WHERE name = 'main'") \
            == projector.backend_pid
    finally:
        await projector.stop()


async def test_a_standby_logs_who_holds_the_lease_and_takes_over_when_it_lapses(database_url: str, pool) -> None:
    holder = await connect_as(database_url, role="vjm_projector")  # a projector that took the lease and hung
    standby = Projector(ProjectorConfig(database_url=database_url, role="vjm_projector", poll_interval=0.05,
                                        takeover_interval=0.05, standby_log_interval=0.2))
    try:
        assert await holder.fetchval("SELECT vjm.try_lead_projector('main', interval '2 seconds')")
        with capture_logs() as logs:
            await standby.start()
            await eventually(lambda: sum(e["event"] == "projector_standby" for e in logs) >= 2, within=5)
            assert not standby.is_leader, "a live, unexpired lease binds"
            said = [e for e in logs if e["event"] == "projector_standby"]
            assert {(e["holder_pid"], e["holder_live"]) for e in said} == {(holder.get_server_pid(), True)}
            await eventually(lambda: standby.is_leader, within=10)  # the holder never renewed: its ttl ran out
        assert not await holder.fetchval("SELECT vjm.try_lead_projector('main')"), "the lapsed holder lost it"
        job = await EventStore(pool).append(prepare_event("create", create_data(), user_id="alice"))
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM vjm.jobs WHERE job_id = $1", job.job_id))
    finally:
        await standby.stop()
        await holder.close()


async def test_a_dead_leaders_lease_is_free_at_once(database_url: str, pool) -> None:
    holder = await connect_as(database_url, role="vjm_projector")
    assert await holder.fetchval("SELECT vjm.try_lead_projector('main', interval '1 day')")
    contender = await connect_as(database_url, role="vjm_projector")
    try:
        assert not await contender.fetchval("SELECT vjm.try_lead_projector('main')")
        await pool.fetchval("SELECT pg_terminate_backend($1, 5000)", holder.get_server_pid())

        async def taken() -> bool:
            return await contender.fetchval("SELECT vjm.try_lead_projector('main')")
        await eventually(taken, within=5)  # not the day the dead lease asked for
        assert await pool.fetchval("SELECT holder_pid FROM vjm.projector_leases WHERE name = 'main'") \
            == contender.get_server_pid()
    finally:
        await contender.close()
        holder.terminate()
