"""Issue 15, finding 1 and 7: raw SQL payloads that the fold cannot read are refused by the
database itself, for end users, processors and admins alike, and nothing is stored."""

from __future__ import annotations

import asyncpg
import pytest

from store import EventStore, prepare_event
from store.identity import acting_as
from tests.support.factories import create_data
from tests.support.tenants import Tenants, as_user

CREATE = '{"original_filename": "a.mp4", "original_filesize": 1, "clip_count": 1, "quality_preset": "pro", ' \
         '"enhancement_level": "basic", "platform_target": "tiktok"%s}'
DEEP = "[" * 1500 + "]" * 1500


async def _count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM vjm.job_events")


@pytest.mark.parametrize("data", [
    "{}",                                                    # no required key: the fold's KeyError
    CREATE.replace('"a.mp4"', '"rtl\\u202egnp.mp4"') % "",   # RTL override in the file name
    CREATE.replace('"a.mp4"', '"line\\u2028sep.mp4"') % "",  # line separator in the file name
    CREATE.replace('"original_filesize": 1', '"original_filesize": -1') % "",
    CREATE % ', "max_attempts": -3',
    CREATE.replace('"clip_count": 1', '"clip_count": 1e300') % "",
    CREATE.replace('"clip_count": 1', '"clip_count": true') % "",
    CREATE.replace('"clip_count": 1', '"clip_count": "1"') % "",
    CREATE % f', "max_attempts": {DEEP}',
])
async def test_an_end_users_raw_create_that_breaks_the_rules_is_refused(tenants: Tenants, user_pool, pool,
                                                                        data: str) -> None:
    before = await _count(pool)
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="rules of create"):
            await conn.fetchrow("SELECT * FROM vjm.append_event(NULL, 'create', $1::text::jsonb, NULL, NULL, NULL, "
                                "'alice', NULL)", data)
    assert await _count(pool) == before


@pytest.mark.parametrize("data", ['{"clip_count": 1e30}', '{"clip_count": 2.5}', '{"clip_count": null}',
                                  f'{{"clip_count": {DEEP}}}', '{"original_filename": "a\\u2029b.mp4"}'])
async def test_an_end_users_raw_metadata_update_that_breaks_the_rules_is_refused(tenants: Tenants, user_pool, pool,
                                                                                 data: str) -> None:
    job = next(j for j, (u, t) in tenants.jobs.items() if u == "alice")
    before = await _count(pool)
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="rules of update_metadata"):
            await conn.fetchrow("SELECT * FROM vjm.append_event($1, 'update_metadata', $2::text::jsonb)", job, data)
    assert await _count(pool) == before


@pytest.mark.parametrize(("trigger", "data"), [
    ("progress", '{"percent": "abc"}'), ("progress", '{"percent": 101}'), ("progress", '{"clips_done": 1e30}'),
    ("progress", '{"percent": true}'), ("progress", f'{{"percent": {DEEP}}}'), ("progress", '{"hacked": 1}'),
    ("complete", '{"output_paths": "one"}'), ("complete", '{"output_paths": [1]}'), ("complete", '{}'),
    ("complete", '{"output_paths": ["a\\u202eb"]}'), ("fail", '{}'), ("fail", '{"error": 42}'),
])
async def test_a_processors_raw_payload_that_breaks_the_rules_is_refused(tenants: Tenants, user_pool, processor_pool,
                                                                         pool, trigger: str, data: str) -> None:
    job = await as_user(user_pool, "alice", "create", create_data(), user_id="alice")
    started = await EventStore(processor_pool).append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id))
    before = await _count(pool)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=f"rules of {trigger}"):
        await processor_pool.fetchrow("SELECT * FROM vjm.append_event($1, $2, $3::text::jsonb, NULL, NULL, $4)",
                                      job.job_id, trigger, data, started.attempt)
    assert await _count(pool) == before
    # The same processor, a payload by the rules: appended.
    stored = await processor_pool.fetchrow("SELECT * FROM vjm.append_event($1, 'progress', '{\"percent\": 50}', "
                                           "NULL, NULL, $2)", job.job_id, started.attempt)
    assert stored["version"] == started.version + 1


async def test_an_admin_is_held_to_the_payload_rules_too(tenants: Tenants, pool) -> None:
    job = next(iter(tenants.jobs))
    before = await _count(pool)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE vjm_admin")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="rules of update_metadata"):
            await conn.fetchrow("SELECT * FROM vjm.append_event($1, 'update_metadata', '{\"clip_count\": 1e30}')",
                                job)
    assert await _count(pool) == before


async def test_a_raw_batch_append_refuses_each_bad_payload_and_keeps_the_good(tenants: Tenants, user_pool,
                                                                             processor_pool, pool) -> None:
    jobs = [await as_user(user_pool, "alice", "create", create_data(), user_id="alice") for _ in range(2)]
    for job in jobs:
        await EventStore(processor_pool).append(prepare_event("start", {}, job_id=job.job_id))
    rows = await processor_pool.fetch(
        "SELECT * FROM vjm.append_events($1, ARRAY['progress', 'progress'], $2::text[]::jsonb[], "
        "ARRAY[NULL, NULL]::text[], ARRAY[1, 1], ARRAY[NULL, NULL]::integer[])",
        [j.job_id for j in jobs], ['{"percent": "abc"}', '{"percent": 12.5}'])
    assert [(r["error_code"], r["version"]) for r in rows] == [("42501", None), (None, 3)]


async def test_a_claim_with_a_worker_id_the_start_rules_refuse_claims_nothing(tenants: Tenants, user_pool,
                                                                             processor_pool, pool) -> None:
    await as_user(user_pool, "alice", "create", create_data(), user_id="alice")
    before = await _count(pool)
    with pytest.raises(asyncpg.InvalidParameterValueError, match="rules of start"):
        await processor_pool.fetch("SELECT * FROM vjm.claim_jobs($1, 1)", "w" * 129)
    assert await _count(pool) == before
    assert len(await processor_pool.fetch("SELECT * FROM vjm.claim_jobs($1, 1)", "w" * 128)) == 1
