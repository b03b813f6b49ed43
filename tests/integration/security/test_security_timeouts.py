"""Time limits per login (issue 15, finding 4): a forgotten transaction cannot hold the horizon for long.

sql/schema/010_roles.sql sets statement_timeout and idle_in_transaction_session_timeout
on each login with ALTER ROLE ... SET (PostgreSQL applies a role's settings when it logs
in, not on SET ROLE). A session of each run-time role shows its login's limits; an idle
transaction that holds a transaction id, and so the projection's horizon, is ended by
the server after the limit; a LISTEN session that sits idle outside a transaction, as
the projector's and the change feed's do, is not.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from store.identity import connect_as
from store.postgres import with_user
from tests.support.waiting import eventually

LIMITS = {  # run-time role: (statement_timeout, idle_in_transaction_session_timeout), as 010_roles.sql sets them
    "vjm_authenticated": ("15s", "15s"),
    "vjm_processor": ("30s", "30s"),
    "vjm_projector": ("1min", "1min"),
}


@pytest.mark.parametrize("role", sorted(LIMITS))
async def test_a_session_of_each_runtime_role_has_its_limits(database_url: str, role: str) -> None:
    conn = await connect_as(database_url, role=role)
    try:
        assert await conn.fetchval("SELECT current_user") == role
        shown = (await conn.fetchval("SHOW statement_timeout"),
                 await conn.fetchval("SHOW idle_in_transaction_session_timeout"))
        assert shown == LIMITS[role]
    finally:
        await conn.close()


@pytest.fixture
async def impatient_login(database_url: str, pool) -> AsyncIterator[str]:
    """A login like vjm_app (NOINHERIT, member of vjm_authenticated) whose idle limit is 300 ms."""
    name = f"vjm_test_idle_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE ROLE {name} LOGIN NOINHERIT IN ROLE vjm_authenticated")
    await pool.execute(f"ALTER ROLE {name} SET idle_in_transaction_session_timeout = '300ms'")
    try:
        yield name
    finally:
        await pool.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1", name)
        await pool.execute(f"DROP ROLE {name}")


async def test_an_idle_transaction_holding_an_xid_is_ended_and_frees_the_horizon(
        database_url: str, pool, impatient_login: str) -> None:
    idle = await asyncpg.connect(with_user(database_url, impatient_login))
    listener = await asyncpg.connect(with_user(database_url, impatient_login))
    try:
        await listener.add_listener("vjm_events", lambda *_: None)  # LISTENs and then sits idle, no transaction
        await idle.execute("SET ROLE vjm_authenticated")
        assert await idle.fetchval("SHOW idle_in_transaction_session_timeout") == "300ms"
        await idle.execute("BEGIN")
        xid = await idle.fetchval("SELECT pg_current_xact_id()")
        pid = idle.get_server_pid()
        assert await pool.fetchval("SELECT vjm.projection_horizon() <= $1::text::xid8", str(xid))

        async def ended() -> bool:
            return not await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
        await eventually(ended, within=10)
        assert await pool.fetchval("SELECT vjm.projection_horizon() > $1::text::xid8", str(xid)), \
            "the horizon moved past the ended transaction"
        # The ended session's next statement fails. Which error asyncpg raises depends on whether it has
        # read the server's goodbye yet: "cannot switch to state 11" (InternalClientError) is a send that
        # raced it.
        with pytest.raises((asyncpg.IdleInTransactionSessionTimeoutError, asyncpg.ConnectionDoesNotExistError,
                            asyncpg.InterfaceError, asyncpg.InternalClientError)):
            await idle.fetchval("SELECT 1")
        assert await listener.fetchval("SELECT 1") == 1, "an idle LISTEN session outside a transaction lives on"
    finally:
        idle.terminate()
        await listener.close()
