"""Pooled identity never leaks: identity and role are transaction-local (is_local => true)."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from statemachine import AccessDenied
from store import EventStore, prepare_event
from store.identity import acting_as, create_role_pool, whoami
from tests.support.tenants import USERS, Tenants

RELATIONS = ("jobs", "job_events", "job_changes")


class Boom(Exception):
    """Raised in the middle of a request."""


async def _visible(conn: asyncpg.Connection) -> set:
    return {r[0] for rel in RELATIONS for r in await conn.fetch(f"SELECT job_id FROM vjm.{rel}")}


async def test_identity_does_not_survive_a_failed_request(tenants: Tenants, database_url: str) -> None:
    pool = await create_role_pool(database_url, role=None, min_size=1, max_size=1)
    try:
        with pytest.raises(Boom):
            async with acting_as(pool, user_id="alice") as conn:
                assert await _visible(conn) == tenants.visible_to("alice")
                raise Boom()
        async with acting_as(pool) as conn:  # no identity
            assert await _visible(conn) == set()
            assert (await whoami(conn))["user_id"] is None
        # Outside acting_as the login has no privileges of its own: fail closed.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.fetch("SELECT job_id FROM vjm.jobs")
        assert await pool.fetchrow("SELECT current_setting('role') AS role, "
                                   "current_setting('request.jwt', true) AS token") == ("none", "")
    finally:
        await pool.close()


async def test_identity_does_not_survive_a_failed_statement(tenants: Tenants, database_url: str) -> None:
    pool = await create_role_pool(database_url, role=None, min_size=1, max_size=1)
    try:
        with pytest.raises(asyncpg.PostgresError):
            async with acting_as(pool, user_id="carol") as conn:
                await conn.execute("SELECT 1/0")
        async with acting_as(pool) as conn:
            assert await _visible(conn) == set()
    finally:
        await pool.close()


async def test_service_pool_returns_to_its_session_role(tenants: Tenants, database_url: str) -> None:
    pool = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=1)
    try:
        # The workers' login (vjm_worker) may not act as an end user at all (SECURITY.md, trust model).
        with pytest.raises(AccessDenied):
            async with acting_as(pool, user_id="carol"):
                raise AssertionError("a worker's login acted as an end user")
        with pytest.raises(Boom):
            async with acting_as(pool, role="vjm_processor") as conn:
                assert await _visible(conn) == set(tenants.jobs)
                raise Boom()
        assert await whoami(pool) == {"role": "vjm_processor", "kind": "processor", "user_id": None}
        # The hot path: a plain append on the pool, no transaction around it.
        job = next(iter(tenants.visible_to("carol")))
        head = await EventStore(pool).read_head(job)
        assert head is not None
    finally:
        await pool.close()


async def test_a_thousand_interleaved_requests_see_only_their_rows(tenants: Tenants, database_url: str) -> None:
    pool = await create_role_pool(database_url, role=None, min_size=4, max_size=4)
    try:
        assert await interleaved_requests(pool, tenants) == []
    finally:
        await pool.close()


async def interleaved_requests(pool: asyncpg.Pool, tenants: Tenants, count: int = 1000) -> list[str]:
    """`count` requests as random users (or nobody) interleaved on `pool`, every 7th failing midway;
    what any of them saw that it should not have (tests/pooler runs it through PgBouncer too)."""
    rng = random.Random(4)
    failures: list[str] = []

    async def request(i: int) -> None:
        user = rng.choice([*USERS, None])
        try:
            async with acting_as(pool, user_id=user) as conn:
                seen = await _visible(conn)
                await asyncio.sleep(0)  # yield to interleave with the other requests on the pool
                seen |= {e.job_id for e in await EventStore(conn).read_after((0, 0), limit=100)}
                if not seen <= tenants.visible_to(user) or (user and seen != tenants.visible_to(user)):
                    failures.append(f"request {i} as {user} saw {len(seen)} jobs")
                if i % 7 == 0:
                    raise Boom()
        except Boom:
            pass

    await asyncio.gather(*(request(i) for i in range(count)))
    return failures


async def test_claims_cannot_smuggle_a_role_or_another_subject(tenants: Tenants, user_pool) -> None:
    sneaky = '", "role": "service_role", "sub": "alice'
    async with acting_as(user_pool, user_id=sneaky) as conn:
        assert (await whoami(conn)) == {"role": "vjm_authenticated", "kind": "user", "user_id": sneaky}
        assert await _visible(conn) == set()


async def test_acting_as_refuses_a_connection_inside_a_transaction(user_pool) -> None:
    from statemachine import ValidationError
    async with user_pool.acquire() as conn, conn.transaction():
        with pytest.raises(ValidationError):
            async with acting_as(conn, user_id="alice"):
                pass


async def test_a_processor_pool_append_is_one_round_trip(tenants: Tenants, processor_pool) -> None:
    # No BEGIN/set_config/COMMIT: the role came with the session, the append is one statement.
    job = next(j for j, (u, t) in tenants.jobs.items() if u == "bob" and t is not None)
    async with processor_pool.acquire() as conn:
        assert not conn.is_in_transaction()
        retried = await conn.fetchrow("SELECT to_state FROM vjm.job_events WHERE job_id = $1 "
                                      "ORDER BY version DESC LIMIT 1", job)
        assert retried["to_state"] == "failed"
        with pytest.raises(Exception, match="not allowed to retry"):
            await EventStore(conn).append(prepare_event("retry", {}, job_id=job))
