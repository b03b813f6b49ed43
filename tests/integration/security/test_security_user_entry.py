"""An end user's create in one statement (vjm_entry.append_event, sql/schema/066_user_entry.sql) names
nobody the token does not name, gives the end users' login nothing it did not have, and leaves no
identity on the connection, whether it succeeds, is refused, or is called by a hostile raw session."""

from __future__ import annotations

import json
import time
import uuid

import asyncpg
import jwt
import pytest

from statemachine import AccessDenied, JobNotFound
from store import EventStore, prepare_event
from store.errors import InvalidToken
from store.identity import APP_LOGIN, WORKER_LOGIN, create_role_pool
from store.pool import init_connection
from store.postgres import with_user
from tests.support.factories import create_data
from tests.support.tenants import Tenants
from tests.support.tokens import TEST_JWT_SECRET

ENTRY = ("SELECT job_id, user_id, actor FROM vjm_entry.append_event($1, NULL, NULL, 'create', $2, $3, NULL, NULL, "
         "$4, $5)")
NO_IDENTITY = ("none", "")


def token(sub: str, *, secret: str = TEST_JWT_SECRET) -> str:
    claims = {"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + 60}
    return jwt.encode(claims, secret, algorithm="HS256")


async def _session(database_url: str, login: str = APP_LOGIN) -> asyncpg.Connection:
    """A raw session with only `login`'s credentials and no role taken."""
    conn = await asyncpg.connect(with_user(database_url, login))
    await init_connection(conn)
    return conn


async def _identity(conn) -> tuple[str, str]:
    return tuple(await conn.fetchrow("SELECT current_setting('role'), current_setting('request.jwt', true)"))


async def test_a_create_is_the_tokens_user_and_leaves_no_identity_behind(tenants: Tenants, database_url) -> None:
    pool = await create_role_pool(database_url, role=None, min_size=1, max_size=1)
    try:
        store = EventStore(pool)
        job = await store.append_as_user(prepare_event("create", create_data(), user_id="alice", team_id=tenants.team1),
                                         token=token("alice"))
        assert (job.user_id, job.actor, job.team_id) == ("alice", "alice", tenants.team1)
        assert await _identity(pool) == NO_IDENTITY
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # outside a statement that takes the role: nothing
            await pool.fetch("SELECT job_id FROM vjm.jobs")
        refusals = [(prepare_event("create", create_data(), user_id="bob"), token("alice"), AccessDenied),
                    (prepare_event("create", create_data(), user_id="alice", team_id=tenants.team2), token("alice"),
                     (AccessDenied, JobNotFound)),
                    (prepare_event("create", create_data(), user_id="alice"), token("alice", secret="x" * 32),
                     InvalidToken),
                    (prepare_event("create", create_data(), user_id="alice"), "", AccessDenied)]
        for event, claims, refused in refusals:
            with pytest.raises(refused):
                await store.append_as_user(event, token=claims)
            assert await _identity(pool) == NO_IDENTITY
    finally:
        await pool.close()


async def test_a_raw_app_session_gets_no_more_than_its_token(tenants: Tenants, database_url) -> None:
    conn = await _session(database_url)
    try:
        with pytest.raises(asyncpg.PostgresError, match="signature"):
            await conn.fetchrow(ENTRY, token("alice", secret="y" * 32), create_data(), "bob", "alice", None)
        assert await _identity(conn) == NO_IDENTITY
        row = await conn.fetchrow(ENTRY, token("bob"), create_data(), "carol", "bob", None)  # actor: the token's
        assert (row["user_id"], row["actor"]) == ("bob", "bob")
        assert await _identity(conn) == NO_IDENTITY
        async with conn.transaction():  # inside a transaction of its own: the token's rows, and only until it ends
            await conn.fetchrow(ENTRY, token("carol"), create_data(), "carol", "carol", None)
            seen = {r[0] for r in await conn.fetch("SELECT DISTINCT user_id FROM vjm.job_events")}
            assert seen == {"carol"}
        assert await _identity(conn) == NO_IDENTITY
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT job_id FROM vjm.jobs")
    finally:
        await conn.close()


async def test_the_entry_fires_no_trigger_an_end_user_may_not(tenants: Tenants, database_url) -> None:
    conn = await _session(database_url)
    job = next(j for j, (owner, _) in tenants.jobs.items() if owner == "alice")
    try:
        for trigger, data in (("start", {"worker_id": "w"}), ("void", {"reason": "x"})):
            with pytest.raises(asyncpg.PostgresError):
                await conn.fetchrow("SELECT * FROM vjm_entry.append_event($1, NULL, $2, $3, $4, NULL, NULL, NULL, "
                                    "NULL, NULL)", token("alice"), job, trigger, data)
            assert await _identity(conn) == NO_IDENTITY
    finally:
        await conn.close()


async def test_only_the_end_users_login_may_use_the_entry(database_url) -> None:
    conn = await _session(database_url, WORKER_LOGIN)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchrow(ENTRY, token("alice"), create_data(), "alice", "alice", None)
    finally:
        await conn.close()


async def test_an_end_users_create_through_the_manager_is_one_statement(database_url) -> None:
    from videojobs import Settings, connect

    async with connect(settings=Settings(database_url=database_url, pool_size=1), listeners=False) as manager:
        sent: list[str] = []
        users = manager._session.runtime.user_pool
        async with users.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
        job = await manager.as_user("dana").create_job(user_id="dana", **create_data())
        keyed = await manager.as_user("dana").create_job(user_id="dana", idempotency_key="k-1", key_wait=1,
                                                         **create_data())
    assert job.user_id == keyed.user_id == "dana"
    assert len(sent) == 2 and all("vjm_entry.append_event" in q for q in sent), sent


BATCH = ("SELECT job_id, actor FROM vjm_entry.append_create_batch($1, $2::uuid[], $3::text::jsonb, $4::text[], "
         "$5::text[], $6::uuid[])")


def _batch_args(users: list[str], teams: list[object] | None = None, job_ids: list[object] | None = None) -> tuple:
    payloads = "[" + ",".join(json.dumps(create_data()) for _ in users) + "]"
    return ([None] * len(users) if job_ids is None else job_ids, payloads, [None] * len(users), users,
            [None] * len(users) if teams is None else teams)


async def test_a_raw_app_session_batch_creates_as_its_token_only(tenants: Tenants, database_url) -> None:
    """vjm_entry.append_create_batch (an end user's combined creates) refuses, all or nothing, every item the
    token's user may not create, and leaves no identity on the connection."""
    conn = await _session(database_url)
    try:
        before = await _count_events(database_url)
        hostile = [(token("alice"), _batch_args(["alice", "bob"]), "not allowed|row-level security"),  # another user's create
                   (token("alice"), _batch_args(["alice"], teams=[tenants.team2]), "not allowed|row-level security"),  # not her team
                   (token("alice", secret="z" * 32), _batch_args(["alice"]), "signature"),  # a forged token
                   (token("alice"), _batch_args(["alice"], job_ids=[uuid.uuid4()]), "issued by the database")]
        for claims, args, refused in hostile:
            with pytest.raises(asyncpg.PostgresError, match=refused):
                await conn.fetch(BATCH, claims, *args)
            assert await _identity(conn) == NO_IDENTITY
        assert await _count_events(database_url) == before  # nothing of a refused batch was written
        rows = await conn.fetch(BATCH, token("alice"), *_batch_args(["alice", "alice"], teams=[tenants.team1, None]))
        assert [r["actor"] for r in rows] == ["alice", "alice"]
        assert await _identity(conn) == NO_IDENTITY
    finally:
        await conn.close()
    worker = await _session(database_url, WORKER_LOGIN)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await worker.fetch(BATCH, token("alice"), *_batch_args(["alice"]))
    finally:
        await worker.close()


async def _count_events(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM vjm.job_events")
    finally:
        await conn.close()
