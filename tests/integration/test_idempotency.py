"""Idempotent creates (sql/schema/062_idempotency.sql): one job per owner and key within the window, under races too.

Every count is of what the database holds (events, keys, the run queue); time is driven through the
database (a key's taken_at, the window setting), never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from statemachine import Trigger
from statemachine.payload_rules import rules_of
from store.projections import verify_projections
from tests.support.factories import create_data
from tests.support.start_line import BLOCKED_BEHIND, start_line
from tests.support.waiting import eventually
from videojobs import IdempotencyConflict, IdempotencyKeyInUse, ValidationError, VideoJobManager

JOB = create_data(user_id="alice")
EVENTS = "SELECT count(*) FROM vjm.job_events"
KEYS = "SELECT user_id, key, job_id FROM vjm.idempotency_keys ORDER BY user_id, key"
CREATE_HOLDING = "SELECT job_id FROM vjm.append_event(NULL, 'create', $1, 'holder', NULL, NULL, $2, NULL)"


@contextlib.asynccontextmanager
async def holding(pool: asyncpg.Pool, key: str, user_id: str = "alice", *, commit: bool = True
                  ) -> AsyncIterator[dict]:
    """A create with `key` whose transaction stays open for the block (it holds the key), then commits or not."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        data = {k: v for k, v in JOB.items() if k != "user_id"} | {"max_attempts": 3, "idempotency_key": key}
        try:
            row = await conn.fetchrow(CREATE_HOLDING, data, user_id)
            yield {"job_id": row["job_id"], "pid": conn.get_server_pid()}
        except BaseException:
            await transaction.rollback()
            raise
        await (transaction.commit() if commit else transaction.rollback())


async def someone_waits_for(pool: asyncpg.Pool, holder: int) -> None:
    """Until a session waits for `holder`'s transaction (a create behind the key it holds)."""
    await eventually(lambda: _blocked_behind(pool, holder), what="a create waiting for the key's holder")


async def _blocked_behind(pool: asyncpg.Pool, holder: int) -> bool:
    return await pool.fetchval(BLOCKED_BEHIND, holder) > 0


async def test_eight_concurrent_creates_with_one_key_make_one_job_that_all_get(manager: VideoJobManager,
                                                                               pool) -> None:
    alice = manager.as_user("alice")
    team = await alice.teams.create("studio", owner_id="alice")
    async with start_line(pool, team.team_id) as until_waiting:
        racers = [asyncio.create_task(alice.create_job(**JOB, team_id=team.team_id, idempotency_key="upload-1"))
                  for _ in range(8)]
        await until_waiting(8)  # all eight are inside the guard, none has reached the key
    jobs = await asyncio.gather(*racers)
    assert len({job.job_id for job in jobs}) == 1 and all(job == jobs[0] for job in jobs)
    assert await pool.fetchval(EVENTS) == 1
    assert [tuple(r) for r in await pool.fetch(KEYS)] == [("alice", "upload-1", jobs[0].job_id)]
    assert await pool.fetchval("SELECT count(*) FROM vjm.run_queue") == 1


async def test_a_replay_returns_the_job_as_created_and_stores_nothing(manager: VideoJobManager, pool) -> None:
    first = await manager.create_job(**JOB, idempotency_key="upload-1")
    assert first.idempotency_key == "upload-1" and first.status == "queued"
    [attempt] = await manager.claim_jobs("w1", limit=1)  # the job moves on
    before = await pool.fetchval(EVENTS)
    again = await manager.create_job(**JOB, idempotency_key="upload-1")
    assert again == first  # the answer the first create gave, not the job as it is now
    assert await pool.fetchval(EVENTS) == before
    assert (await manager.get_job_by_id(first.job_id)).status == "processing" and attempt.job_id == first.job_id
    as_user = await manager.as_user("alice").create_job(**JOB, idempotency_key="upload-1")
    assert as_user == first and await pool.fetchval(EVENTS) == before  # the owner's key, whoever asks for them


@pytest.mark.parametrize("change", [{"clip_count": 9}, {"max_attempts": 5}, {"platform_target": "instagram"},
                                    {"team": True}])
async def test_the_same_key_with_a_different_request_is_refused_and_stores_nothing(
        manager: VideoJobManager, pool, change: dict) -> None:
    first = await manager.create_job(**JOB, idempotency_key="upload-1")
    if change.pop("team", False):
        change["team_id"] = (await manager.teams.create("studio", owner_id="alice")).team_id
    before = await pool.fetchval(EVENTS)
    with pytest.raises(IdempotencyConflict, match="upload-1") as info:
        await manager.create_job(**{**JOB, **change}, idempotency_key="upload-1")
    assert info.value.job_id == first.job_id
    assert await pool.fetchval(EVENTS) == before
    assert [tuple(r) for r in await pool.fetch(KEYS)] == [("alice", "upload-1", first.job_id)]


async def test_another_users_key_is_another_key(manager: VideoJobManager, pool) -> None:
    alice = await manager.create_job(**JOB, idempotency_key="upload-1")
    bob = await manager.create_job(**{**JOB, "user_id": "bob"}, idempotency_key="upload-1")
    carol = await manager.create_job(**{**JOB, "user_id": "carol", "clip_count": 2}, idempotency_key="upload-1")
    assert len({alice.job_id, bob.job_id, carol.job_id}) == 3 and carol.clip_count == 2
    assert await manager.create_job(**JOB, idempotency_key="upload-1") == alice
    assert await pool.fetchval(EVENTS) == 3


async def test_a_key_older_than_the_window_makes_a_new_job(manager: VideoJobManager, pool, make_projector,
                                                            database_url: str) -> None:
    first = await manager.create_job(**JOB, idempotency_key="upload-1")
    await pool.execute("UPDATE vjm.idempotency_keys SET taken_at = taken_at - interval '23 hours 59 minutes'")
    assert await manager.create_job(**JOB, idempotency_key="upload-1") == first  # still within 24 hours
    await pool.execute("UPDATE vjm.idempotency_keys SET taken_at = taken_at - interval '2 minutes'")
    second = await manager.create_job(**JOB, idempotency_key="upload-1")
    assert second.job_id != first.job_id and second.idempotency_key == "upload-1"
    assert [tuple(r) for r in await pool.fetch(KEYS)] == [("alice", "upload-1", second.job_id)]
    assert await manager.create_job(**JOB, idempotency_key="upload-1") == second
    await make_projector().run_once()
    assert (await verify_projections(database_url)).ok  # two jobs with the key; it binds the newest


async def test_the_window_is_a_database_setting(manager: VideoJobManager, pool) -> None:
    await pool.execute("UPDATE vjm.idempotency_settings SET key_window = interval '1 hour'")
    first = await manager.create_job(**JOB, idempotency_key="upload-1")
    await pool.execute("UPDATE vjm.idempotency_keys SET taken_at = taken_at - interval '59 minutes'")
    assert await manager.create_job(**JOB, idempotency_key="upload-1") == first
    await pool.execute("UPDATE vjm.idempotency_keys SET taken_at = taken_at - interval '2 minutes'")
    assert (await manager.create_job(**JOB, idempotency_key="upload-1")).job_id != first.job_id
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("UPDATE vjm.idempotency_settings SET key_window = interval '0'")


async def test_keys_past_the_window_are_removed_as_keyed_creates_go(manager: VideoJobManager, pool) -> None:
    for i in range(20):
        await manager.create_job(**JOB, idempotency_key=f"old-{i}")
    await pool.execute("UPDATE vjm.idempotency_keys SET taken_at = taken_at - interval '25 hours'")
    await manager.create_job(**JOB)  # a create without a key removes nothing
    assert await pool.fetchval("SELECT count(*) FROM vjm.idempotency_keys") == 20
    await manager.create_job(**JOB, idempotency_key="new")
    left = await pool.fetch("SELECT key FROM vjm.idempotency_keys WHERE taken_at < now() - interval '1 day'")
    assert len(left) == 20 - 17  # 16 and one per key of the call, oldest first
    assert await pool.fetchval("SELECT count(*) FROM vjm.idempotency_keys WHERE key = 'new'") == 1


async def test_bulk_creates_take_a_key_per_job_and_a_repeated_key_is_one_job(manager: VideoJobManager,
                                                                             pool) -> None:
    earlier = await manager.create_job(**JOB, idempotency_key="k0")
    made = await manager.bulk_create_jobs([{**JOB, "idempotency_key": "k1"}, {**JOB, "idempotency_key": "k0"},
                                           {**JOB, "idempotency_key": "k1"}, dict(JOB),
                                           {**JOB, "user_id": "bob", "idempotency_key": "k1"}])
    assert made[1] == earlier and made[0] == made[2] and made[0].idempotency_key == "k1"
    assert len({m.job_id for m in made}) == 4 and made[3].idempotency_key is None
    assert await pool.fetchval(EVENTS) == 4  # earlier, k1, the one without a key, bob's k1
    assert [await manager.get_job_by_id(job.job_id) for job in made] == made
    again = await manager.bulk_create_jobs([{**JOB, "idempotency_key": "k1"}, {**JOB, "idempotency_key": "k2"}])
    assert again[0] == made[0] and await pool.fetchval(EVENTS) == 5


@pytest.mark.parametrize("batch", [
    [{**JOB, "idempotency_key": "k1"}, {**JOB, "idempotency_key": "k1", "clip_count": 2}],  # within the call
    [{**JOB, "idempotency_key": "k2"}, {**JOB, "idempotency_key": "k0", "clip_count": 2}],  # against the log
])
async def test_a_bulk_create_that_reuses_a_key_for_another_request_writes_nothing(manager: VideoJobManager, pool,
                                                                                  batch: list) -> None:
    await manager.create_job(**JOB, idempotency_key="k0")
    before = (await pool.fetchval(EVENTS), await pool.fetch(KEYS))
    with pytest.raises(IdempotencyConflict):
        await manager.bulk_create_jobs(batch)
    assert (await pool.fetchval(EVENTS), await pool.fetch(KEYS)) == before


async def test_a_create_waits_for_the_request_holding_its_key_and_answers_with_its_job(
        manager: VideoJobManager, pool) -> None:
    async with holding(pool, "upload-1") as held:
        waiting = asyncio.create_task(manager.create_job(**JOB, idempotency_key="upload-1"))
        await someone_waits_for(pool, held["pid"])
        assert not waiting.done()
    job = await waiting  # the holder committed: its job
    assert job.job_id == held["job_id"] and await pool.fetchval(EVENTS) == 1


async def test_a_create_whose_key_holder_rolls_back_makes_the_job(manager: VideoJobManager, pool) -> None:
    async with holding(pool, "upload-1", commit=False) as held:
        waiting = asyncio.create_task(manager.create_job(**JOB, idempotency_key="upload-1"))
        await someone_waits_for(pool, held["pid"])
    job = await waiting
    assert job.job_id != held["job_id"] and await pool.fetchval(EVENTS) == 1


async def test_key_wait_bounds_the_wait_for_a_request_in_progress(manager: VideoJobManager, pool) -> None:
    async with holding(pool, "upload-1") as held:
        with pytest.raises(IdempotencyKeyInUse, match="upload-1"):
            await manager.create_job(**JOB, idempotency_key="upload-1", key_wait=0.05)
        with pytest.raises(IdempotencyKeyInUse):
            await manager.as_user("alice").create_job(**JOB, idempotency_key="upload-1", key_wait=0.05)
        other = await manager.create_job(**JOB, idempotency_key="upload-2", key_wait=0.05)  # another key: no wait
    assert (await manager.create_job(**JOB, idempotency_key="upload-1", key_wait=0.05)).job_id == held["job_id"]
    assert other.job_id != held["job_id"] and await pool.fetchval(EVENTS) == 2


async def test_a_request_is_compared_with_the_defaults_python_fills_in(manager: VideoJobManager, pool) -> None:
    defaults = {rule.key: rule.default for rule in rules_of(Trigger.CREATE) if rule.default is not None}
    assert await pool.fetchval("SELECT vjm.create_request('{}')") == defaults
    async with holding(pool, "upload-1") as held:  # raw SQL, leaving priority out
        pass
    assert (await manager.create_job(**JOB, idempotency_key="upload-1")).job_id == held["job_id"]


@pytest.mark.parametrize("key", ["", "x" * 201, "two words", "caf\u00e9", "tab\there", "\u202eevil", None])
async def test_a_bad_key_is_refused_by_name_and_stores_nothing(manager: VideoJobManager, pool, key) -> None:
    with pytest.raises(ValidationError) as info:
        if key is None:
            await manager.bulk_create_jobs([{**JOB, "idempotency_key": key}])
        else:
            await manager.create_job(**JOB, idempotency_key=key)
    assert info.value.field is not None and info.value.field.endswith("idempotency_key")
    assert await pool.fetchval(EVENTS) == 0


@pytest.mark.parametrize("key_wait", [0, -1, 61, float("nan"), True, "1"])
async def test_key_wait_is_checked(manager: VideoJobManager, key_wait) -> None:
    with pytest.raises(ValidationError) as info:
        await manager.create_job(**JOB, idempotency_key="k", key_wait=key_wait)
    assert info.value.field == "key_wait"


async def test_verify_checks_the_key_on_the_job_and_the_keys_against_the_log(manager: VideoJobManager, pool,
                                                                             make_projector,
                                                                             database_url: str) -> None:
    job = await manager.create_job(**JOB, idempotency_key="upload-1")
    other = await manager.create_job(**JOB, idempotency_key="upload-2")
    await make_projector().run_once()
    assert (await verify_projections(database_url)).ok
    await pool.execute("UPDATE vjm.jobs SET idempotency_key = 'forged' WHERE job_id = $1", job.job_id)
    await pool.execute("UPDATE vjm.idempotency_keys SET job_id = $1 WHERE key = 'upload-1'", other.job_id)
    await pool.execute("DELETE FROM vjm.idempotency_keys WHERE key = 'upload-2'")
    found = {(d.table, d.kind, d.key, d.columns) for d in (await verify_projections(database_url)).differences}
    assert found == {("jobs", "different", str(job.job_id), ("idempotency_key",)),
                     ("idempotency_keys", "different", "alice:upload-1", ("job_id",)),
                     ("idempotency_keys", "missing", "alice:upload-2", ())}

