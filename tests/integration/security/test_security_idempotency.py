"""Idempotency keys as raw SQL from the run-time roles: the database, not Python, keeps them.

Keys are per owner (the job's user_id): an end user creates for themselves only, so a key never
reaches another user's job, and a request the guard refuses is refused before any key is looked
at, so it neither answers with a job nor holds a key while its transaction stays open.
"""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from store.identity import acting_as, create_role_pool
from tests.support.factories import create_data
from tests.support.start_line import start_line
from tests.support.tenants import Tenants

APPEND = "SELECT * FROM vjm.append_event(NULL, 'create', $1, NULL, NULL, NULL, $2, $3)"
APPEND_CREATES = "SELECT * FROM vjm.append_creates($1, $2, $3, $4, $5)"
EVENTS = "SELECT count(*) FROM vjm.job_events"
KEYS = "SELECT user_id, key, job_id FROM vjm.idempotency_keys ORDER BY user_id, key"


def keyed(key: str, **overrides) -> dict:
    return {**create_data(original_filename="upload.mp4", **overrides), "max_attempts": 3, "idempotency_key": key}


async def create_as(pool: asyncpg.Pool, user: str, data: dict, owner: str | None = None, team=None) -> asyncpg.Record:
    async with acting_as(pool, user_id=user) as conn:
        return await conn.fetchrow(APPEND, data, owner or user, team)


async def test_an_end_users_raw_sql_creates_replay_through_every_create_function(tenants: Tenants, user_pool,
                                                                                pool) -> None:
    first = await create_as(user_pool, "alice", keyed("k1"))
    before = await pool.fetchval(EVENTS)
    again = await create_as(user_pool, "alice", keyed("k1"))
    assert dict(again) == dict(first) and await pool.fetchval(EVENTS) == before
    async with acting_as(user_pool, user_id="alice") as conn:
        rows = await conn.fetch(APPEND_CREATES, [None] * 3, [keyed("k1"), keyed("k2"), keyed("k2")], [None] * 3,
                                ["alice"] * 3, [None] * 3)
    assert dict(rows[0]) == dict(first) and dict(rows[1]) == dict(rows[2]) and rows[1]["job_id"] != first["job_id"]
    assert await pool.fetchval(EVENTS) == before + 1
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.PostgresError) as info:
            await conn.fetchrow(APPEND, keyed("k1", clip_count=9), "alice", None)
    assert info.value.sqlstate == "VJ424" and await pool.fetchval(EVENTS) == before + 1


async def test_eight_end_user_sessions_racing_with_one_key_make_one_job(tenants: Tenants, database_url: str,
                                                                        pool) -> None:
    racers_pool = await create_role_pool(database_url, role=None, min_size=8, max_size=8)
    try:
        before = await pool.fetchval(EVENTS)
        async with start_line(pool, tenants.team1) as until_waiting:
            racers = [asyncio.create_task(create_as(racers_pool, "alice", keyed("race"), team=tenants.team1))
                      for _ in range(8)]
            await until_waiting(8)
        rows = await asyncio.gather(*racers)
    finally:
        await racers_pool.close()
    assert len({(r["job_id"], r["position"]) for r in rows}) == 1
    assert await pool.fetchval(EVENTS) == before + 1
    assert [tuple(r) for r in await pool.fetch(KEYS)] == [("alice", "race", rows[0]["job_id"])]


def _worded(error: BaseException) -> tuple[str | None, str]:
    """The refusal without the job id the database issued for it (different for every request)."""
    return getattr(error, "sqlstate", None), re.sub(r"[0-9a-f-]{36}", "<id>", str(error))


async def _refusal(user_pool, data: dict, team) -> tuple[str | None, str]:
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as info:
        await create_as(user_pool, "alice", data, owner="bob", team=team)
    return _worded(info.value)


@pytest.mark.parametrize("in_team", [False, True])
async def test_a_key_tells_nothing_of_another_users_jobs(tenants: Tenants, user_pool, pool, in_team: bool) -> None:
    team = tenants.team1 if in_team else None  # in T1 alice sees bob's job, and still may not create for him
    bobs = await create_as(user_pool, "bob", keyed("bobs-key"), team=team)
    before = (await pool.fetchval(EVENTS), await pool.fetch(KEYS))
    with_key = await _refusal(user_pool, keyed("bobs-key"), team)  # bob's very request, his key
    unused = await _refusal(user_pool, keyed("never-used"), team)
    assert with_key == unused and with_key[0] == "42501"
    assert (await pool.fetchval(EVENTS), await pool.fetch(KEYS)) == before
    assert [r["job_id"] for r in await pool.fetch(KEYS)] == [bobs["job_id"]]


async def test_one_users_open_request_does_not_hold_another_users_key(tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as alice:
        await alice.fetchrow(APPEND, keyed("shared"), "alice", None)  # taken, not committed
        async with acting_as(user_pool, user_id="carol") as carol:
            await carol.execute("SET LOCAL lock_timeout = '100ms'")
            assert await carol.fetchrow(APPEND, keyed("shared"), "carol", None)  # no wait: carol's own key


async def test_a_refused_request_holds_no_key_while_its_transaction_stays_open(tenants: Tenants, user_pool) -> None:
    async with user_pool.acquire() as conn:
        async with acting_as(conn, user_id="alice"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchrow(APPEND, keyed("bobs-next"), "bob", None)  # for bob: refused first
            # alice's transaction is still open (aborted): bob's create with that key does not wait for it
            async with acting_as(user_pool, user_id="bob") as bob:
                await bob.execute("SET LOCAL lock_timeout = '100ms'")
                assert await bob.fetchrow(APPEND, keyed("bobs-next"), "bob", None)


async def test_processors_may_not_create_keyed_jobs_and_no_role_writes_keys(tenants: Tenants, processor_pool,
                                                                           user_pool, pool) -> None:
    before = (await pool.fetchval(EVENTS), await pool.fetch(KEYS))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await processor_pool.fetchrow(APPEND, keyed("k"), "alice", None)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await processor_pool.execute("DELETE FROM vjm.idempotency_keys")
    async with acting_as(user_pool, user_id="alice") as conn:
        assert await conn.fetchval("SELECT key_window FROM vjm.idempotency_settings") is not None
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE vjm.idempotency_settings SET key_window = interval '1 second'")
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM vjm.idempotency_keys")
    assert (await pool.fetchval(EVENTS), await pool.fetch(KEYS)) == before
