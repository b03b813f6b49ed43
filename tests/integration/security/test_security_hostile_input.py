"""Hostile input to every store-level public function: refused with a typed error,
and nothing is written. Valid-but-nasty strings (SQL in a file name) are stored verbatim."""

from __future__ import annotations

import uuid

import pytest

from statemachine import AccessDenied, JobNotFound, ValidationError
from store import EventStore, prepare_event
from store.identity import acting_as, create_role_pool
from store.teams import add_team_member, create_team, list_team_members, list_teams, remove_team_member
from tests.support.factories import create_data
from tests.support.hostile_input import CONTROL_FILENAMES, INJECTIONS, NOT_UUIDS
from tests.support.tenants import Tenants, as_user

BAD_CREATES = [
    *({"original_filename": f} for f in CONTROL_FILENAMES),
    {"original_filename": "x" * 256}, {"original_filename": "a/b.mp4"}, {"original_filename": ".."},
    {"original_filesize": -1}, {"original_filesize": 2**60},
    {"clip_count": -5}, {"clip_count": 0}, {"clip_count": 51}, {"clip_count": 2.5}, {"clip_count": None},
    {"quality_preset": "8k"}, {"platform_target": "myspace"}, {"enhancement_level": INJECTIONS[0]},
    {"max_attempts": -1}, {"max_attempts": 10**6}, {"unknown_field": 1}, {"original_filename": ["a.mp4"]},
]


async def _count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM vjm.job_events")


@pytest.mark.parametrize("override", BAD_CREATES)
async def test_bad_create_payloads_are_refused(override, tenants: Tenants, user_pool, pool) -> None:
    before = await _count(pool)
    with pytest.raises(ValidationError) as info:
        await as_user(user_pool, "alice", "create", create_data(**override), user_id="alice")
    assert info.value.field
    assert await _count(pool) == before


@pytest.mark.parametrize("kwargs", [
    {"trigger": "explode"}, {"trigger": INJECTIONS[0]}, {"trigger": 5}, {"trigger": None},
    {"data": "a string"}, {"data": [1, 2]}, {"data": 42},
    {"data": {"output_paths": ["/p"] * 101}}, {"data": {"output_paths": ["p" * 1025]}},
    {"data": {"output_paths": ["bad\x00path"]}}, {"data": {"output_paths": "one"}},
    {"data": {"percent": -1}}, {"data": {"percent": float("nan")}},
    {"data": {"error": ""}}, {"data": {"error": "x" * 4001}},
    {"expected_version": -1}, {"expected_version": "1"}, {"expected_version": 2**31}, {"expected_version": True},
    {"attempt": -1}, {"attempt": 1.0}, {"attempt": [1]},
    *({"job_id": v} for v in NOT_UUIDS),
])
async def test_bad_transitions_are_refused_before_sql(kwargs, tenants: Tenants, pool) -> None:
    job = next(iter(tenants.jobs))
    call = {"trigger": "complete", "data": {"output_paths": []}, "job_id": job, **kwargs}
    if call["trigger"] != "complete" and "data" not in kwargs:
        call["data"] = {}
    before = await _count(pool)
    with pytest.raises(ValidationError):
        prepare_event(call.pop("trigger"), call.pop("data"), **call)
    assert await _count(pool) == before


@pytest.mark.parametrize("injection", INJECTIONS)
async def test_injection_in_ids_and_names_is_data(injection, tenants: Tenants, user_pool, pool) -> None:
    before = await _count(pool)
    with pytest.raises(AccessDenied):  # a create for another "user" is refused
        await as_user(user_pool, "alice", "create", create_data(), user_id=injection)
    assert await _count(pool) == before
    stored = await as_user(user_pool, "alice", "create", create_data(original_filename=f"{injection}.mp4"
                                                                     .replace("\\", "_")), user_id="alice")
    assert stored.user_id == "alice"
    assert await pool.fetchval("SELECT data ->> 'original_filename' FROM vjm.job_events WHERE position = $1",
                               stored.position) == f"{injection}.mp4".replace("\\", "_")
    assert await pool.fetchval("SELECT to_regclass('vjm.job_events') IS NOT NULL")


@pytest.mark.parametrize("kwargs", [
    {"role": "postgres"}, {"role": "vjm_owner"}, {"role": "vjm_app"}, {"role": None}, {"role": 1},
    {"role": "vjm_admin; RESET ROLE"}, {"role": "VJM_ADMIN"}, {"role": "vjm_authenticated "},
    {"user_id": ""}, {"user_id": "u" * 129}, {"user_id": 42}, {"user_id": ["alice"]}, {"user_id": b"alice"},
    {"user_id": "ali\x00ce"}, {"user_id": "ali\nce"}, {"user_id": "ali\u202ece"}, {"user_id": "\ud800"},
])
async def test_acting_as_refuses_bad_roles_and_identities(kwargs, user_pool) -> None:
    with pytest.raises(ValidationError):
        async with acting_as(user_pool, **{"role": "vjm_authenticated", "user_id": "alice", **kwargs}):
            pytest.fail("entered")
    async with user_pool.acquire() as conn:
        assert not conn.is_in_transaction()


@pytest.mark.parametrize("role", ["vjm_owner", "postgres", "x"])
async def test_role_pools_refuse_unknown_roles(role, database_url: str) -> None:
    with pytest.raises(ValidationError):
        await create_role_pool(database_url, role=role)


@pytest.mark.parametrize("call", [
    lambda c, t: create_team(c, "", owner_id="alice"),
    lambda c, t: create_team(c, "x" * 201, owner_id="alice"),
    lambda c, t: create_team(c, "bell\x07", owner_id="alice"),
    lambda c, t: create_team(c, 5, owner_id="alice"),
    lambda c, t: create_team(c, "ok", owner_id=""),
    lambda c, t: create_team(c, "ok", owner_id=None),
    lambda c, t: add_team_member(c, "not-a-uuid", "bob"),
    lambda c, t: add_team_member(c, t, "bob", role="admin"),
    lambda c, t: add_team_member(c, t, "b" * 129),
    lambda c, t: add_team_member(c, t, 7),
    lambda c, t: remove_team_member(c, INJECTIONS[0], "bob"),
    lambda c, t: list_teams(c, limit=-1),
    lambda c, t: list_teams(c, limit="10"),
    lambda c, t: list_team_members(c, t, limit=10**9),
    lambda c, t: list_team_members(c, 12345),
])
async def test_team_functions_refuse_bad_input(call, tenants: Tenants, user_pool, pool) -> None:
    members = await pool.fetchval("SELECT count(*) FROM vjm.team_members")
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(ValidationError):
            await call(conn, tenants.team1)
    assert await pool.fetchval("SELECT count(*) FROM vjm.team_members") == members


async def test_a_user_cannot_create_a_team_for_someone_else(user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(AccessDenied):
            await create_team(conn, "theirs", owner_id="bob")


async def test_unknown_job_ids_are_not_found_not_errors(tenants: Tenants, user_pool) -> None:
    with pytest.raises(JobNotFound):
        await as_user(user_pool, "alice", "cancel", {}, job_id=uuid.uuid4())


@pytest.mark.parametrize("job_id", ["not-a-uuid", 12345, INJECTIONS[0]])
async def test_read_functions_refuse_bad_ids_with_a_typed_error(job_id, tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(ValidationError):
            await EventStore(conn).read_stream(job_id)


@pytest.mark.parametrize("kwargs", [{"limit": -1}, {"limit": "10"}, {"cursor": ("a", "b")}])
async def test_read_after_refuses_bad_cursors_with_a_typed_error(kwargs, tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(ValidationError):
            await EventStore(conn).read_after(**kwargs)


async def test_bulk_create_refuses_non_creates_and_writes_nothing(tenants: Tenants, user_pool, pool) -> None:
    before = await _count(pool)
    events = [prepare_event("create", create_data(), user_id="alice"),
              prepare_event("cancel", {}, job_id=next(iter(tenants.jobs)))]
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(ValidationError):
            await EventStore(conn).append_creates(events)
    assert await _count(pool) == before
