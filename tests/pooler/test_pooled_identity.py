"""Behind PgBouncer (transaction mode) no identity, role or statement survives its transaction.

The pooler hands each transaction to any of its server connections, so these prove that vjm keeps
nothing in the session: 1,000 interleaved end-user requests see only their own rows while a
processor pool's role is taken per transaction on the same server connections' login, and 50
client connections really share 5 server connections.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from bench.pgbouncer import SERVER_CONNECTIONS
from statemachine import DatabaseUnavailable
from store.identity import acting_as, create_role_pool, whoami
from tests.integration.security.test_security_identity_leak import interleaved_requests
from tests.support.tenants import Tenants
from tests.support.workers import create_job_named
from videojobs import Settings, connect
from videojobs.connect import login_of

CLIENTS = 50
SLEEP = 0.1  # seconds each statement of the sharing test holds its server connection


async def test_a_thousand_interleaved_requests_through_the_pooler_see_only_their_rows(
        tenants: Tenants, pooled_url: str) -> None:
    users = await create_role_pool(pooled_url, role=None, min_size=CLIENTS // 2, max_size=CLIENTS // 2,
                                   pooler="transaction")
    processors = await create_role_pool(pooled_url, role="vjm_processor", min_size=1, max_size=CLIENTS // 2,
                                        pooler="transaction")
    try:
        async def processor_requests() -> list[dict]:
            return list(await asyncio.gather(*(whoami(processors) for _ in range(300))))

        failures, identities = await asyncio.gather(interleaved_requests(users, tenants), processor_requests())
        assert failures == []
        assert {(i["role"], i["kind"], i["user_id"]) for i in identities} == {("vjm_processor", "processor", None)}
        # Between transactions a pooled vjm_app connection is nobody: no role, no token, nothing readable.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await users.fetch("SELECT job_id FROM vjm.jobs")
        assert await users.fetchrow("SELECT current_setting('role') AS role, "
                                    "coalesce(current_setting('request.jwt', true), '') AS token") == ("none", "")
    finally:
        await users.close()
        await processors.close()


async def test_fifty_clients_share_five_server_connections(tenants: Tenants, pooled_url: str,
                                                           database_url: str) -> None:
    users = await create_role_pool(pooled_url, role=None, min_size=CLIENTS // 2, max_size=CLIENTS // 2,
                                   pooler="transaction")
    processors = await create_role_pool(pooled_url, role="vjm_processor", min_size=CLIENTS // 2,
                                        max_size=CLIENTS // 2, pooler="transaction")
    observer = await asyncpg.connect(database_url)
    try:
        async def as_user() -> int:
            async with acting_as(users, user_id="alice") as conn:
                return int(await conn.fetchval(f"SELECT count(*) FROM vjm.jobs, pg_sleep({SLEEP})"))

        async def as_processor() -> int:
            return int(await processors.fetchval(f"SELECT count(*) FROM vjm.jobs, pg_sleep({SLEEP})"))

        async def server_sessions() -> int:
            # The server sessions running a client's statement now. Not every session of the two logins:
            # to open a server connection for one login at the cap, PgBouncer closes an idle one of the
            # other, and the closed connection's backend is still listed for a moment after.
            return int(await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND usename IN ('vjm_app', 'vjm_worker') AND state = 'active' "
                "AND query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()"))

        started = time.monotonic()
        work = asyncio.gather(*(as_user() for _ in range(CLIENTS // 2)),
                              *(as_processor() for _ in range(CLIENTS // 2)))
        peak = 0
        while not work.done():
            peak = max(peak, await server_sessions())
            await asyncio.wait({work}, timeout=0.02)
        counts, elapsed = await work, time.monotonic() - started
        assert users.get_size() + processors.get_size() == CLIENTS  # 50 client connections were open
        assert 0 < peak <= SERVER_CONNECTIONS
        # 50 statements of SLEEP seconds each, at most 5 at a time: not faster than 10 rounds.
        assert elapsed >= CLIENTS / SERVER_CONNECTIONS * SLEEP * 0.95
        assert set(counts[:CLIENTS // 2]) == {len(tenants.visible_to("alice"))}
        assert set(counts[CLIENTS // 2:]) == {len(tenants.jobs)}
    finally:
        await observer.close()
        await users.close()
        await processors.close()


async def test_a_pooler_without_the_setting_is_named_in_the_error(pooled_url: str, database_url: str) -> None:
    # Through a transaction pooler, cached statements land on server connections that never
    # prepared them: the error says what to set, not only what the driver saw.
    settings = Settings(database_url=pooled_url, direct_database_url=database_url, pool_size=10, user_pool_size=10,
                        write_combining=False)
    with pytest.raises(DatabaseUnavailable, match="VJM_DATABASE_POOLER=transaction"):
        async with asyncio.timeout(60), connect(settings=settings, listeners=False) as manager:
            for _ in range(50):
                # Every request ends before the error is raised: none is left waiting in the pooler's queue
                # when the manager closes (the queue would hold it for its query_wait_timeout, 120 s).
                ended = await asyncio.gather(*(create_job_named(manager, "ok.mp4") for _ in range(20)),
                                             *(manager.list_jobs(limit=5) for _ in range(20)), return_exceptions=True)
                errors = [e for e in ended if isinstance(e, BaseException)]
                if errors:
                    raise next((e for e in errors if isinstance(e, DatabaseUnavailable)), errors[0])


async def test_a_worker_login_needs_no_role_per_transaction_and_an_operator_gets_one(pooled_url: str) -> None:
    # vjm_worker acts as vjm_processor from its first statement (a login default, sql/schema/010_roles.sql):
    # its pooled statements run as they are. The test's own login (an operator, acting as vjm_admin)
    # has no such default: each of its transactions takes the role (store.pooler.RolePerTransaction).
    workers = await create_role_pool(pooled_url, role="vjm_processor", min_size=2, max_size=2, pooler="transaction")
    operators = await create_role_pool(pooled_url, role="vjm_admin", login=login_of(pooled_url), min_size=2,
                                       max_size=2, pooler="transaction")
    try:
        async with workers.acquire() as conn:
            assert conn._con.vjm_role is None
        async with operators.acquire() as conn:
            assert conn._con.vjm_role == "vjm_admin"
        for pool, kind in ((workers, "processor"), (operators, "admin")):
            seen = await asyncio.gather(*(whoami(pool) for _ in range(200)))
            assert {s["kind"] for s in seen} == {kind}
            async with pool.acquire() as conn, conn.transaction():
                assert (await whoami(conn))["kind"] == kind
    finally:
        await workers.close()
        await operators.close()


async def test_session_state_a_hostile_client_leaves_never_reaches_a_vjm_request(tenants: Tenants, pooled_url: str,
                                                                                   user_pool) -> None:
    # A raw client with vjm_app's password sets alice's role and token for the *session* on every
    # server connection the pooler has (SET without LOCAL survives its transaction there). vjm's own
    # requests set both per transaction, so each still runs as exactly who it names.
    from store.postgres import with_user
    from tests.support.tokens import token

    alice = token("alice")

    async def poison() -> None:
        conn = await asyncpg.connect(with_user(pooled_url, "vjm_app"), statement_cache_size=0)
        try:
            async with conn.transaction():  # all at once: each holds its own server connection
                await conn.execute(f"SET ROLE vjm_authenticated; SELECT set_config('request.jwt', '{alice}', false);"
                                   f" SELECT pg_sleep(0.3)")
        finally:
            await conn.close()

    await asyncio.gather(*(poison() for _ in range(SERVER_CONNECTIONS)))
    raw = await asyncpg.connect(with_user(pooled_url, "vjm_app"), statement_cache_size=0)
    try:  # the poison took: a raw statement outside any transaction runs as alice (SECURITY.md, known gaps)
        assert await raw.fetchval("SELECT vjm.current_user_id()") == "alice"
    finally:
        await raw.close()
    for _ in range(20):
        async with acting_as(user_pool, user_id="bob") as conn:
            assert (await whoami(conn))["user_id"] == "bob"
            assert {r[0] for r in await conn.fetch("SELECT job_id FROM vjm.jobs")} == tenants.visible_to("bob")
        async with acting_as(user_pool) as conn:  # no identity: nobody, whatever the session was left with
            assert (await whoami(conn))["user_id"] is None
            assert await conn.fetch("SELECT job_id FROM vjm.jobs") == []
