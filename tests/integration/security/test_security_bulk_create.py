"""Bulk creates by end users: the same rules as one create, through vjm.append_create_batch."""

from __future__ import annotations

import asyncpg
import pytest

from statemachine import AccessDenied
from store import EventStore, prepare_event
from store.events import prepare_creates
from store.identity import acting_as
from tests.support.factories import create_data
from tests.support.tenants import Tenants


async def test_a_users_bulk_create_is_recorded_as_them_whatever_actor_they_name(tenants: Tenants,
                                                                               user_pool) -> None:
    creates = prepare_creates([create_data()] * 3, ["alice"] * 3, [None, tenants.team1, None],
                              ["carol", None, "system:anything"])
    async with acting_as(user_pool, user_id="alice") as conn:
        stored = await EventStore(conn).append_creates(creates)
    assert [(e.actor, e.user_id, e.team_id) for e in stored] == [
        ("alice", "alice", None), ("alice", "alice", tenants.team1), ("alice", "alice", None)]
    async with acting_as(user_pool, user_id="alice") as conn:
        assert [await EventStore(conn).read_stream(e.job_id) for e in stored] == [[e] for e in stored]


@pytest.mark.parametrize("target", ["bob", "team2", "no_identity"])
async def test_one_foreign_job_refuses_the_whole_batch(tenants: Tenants, user_pool, pool, target: str) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    users, teams = ["alice"] * 50, [None] * 50
    if target == "bob":
        users[37] = "bob"
    elif target == "team2":
        teams[12] = tenants.team2
    creates = prepare_creates([create_data()] * 50, users, teams, [None] * 50)
    async with acting_as(user_pool, user_id=None if target == "no_identity" else "alice") as conn:
        with pytest.raises(AccessDenied):
            await EventStore(conn).append_creates(creates)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_a_users_raw_payloads_are_still_checked_by_the_database(tenants: Tenants, user_pool, pool) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.fetch("SELECT * FROM vjm.append_create_batch($1, $2::jsonb, $3, $4, $5)",
                             [None, None], [create_data(), {**create_data(), "injected": "x"}],
                             [None, None], ["alice", "alice"], [None, None])
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_a_processor_may_not_bulk_create(tenants: Tenants, processor_pool) -> None:
    with pytest.raises(AccessDenied):
        await EventStore(processor_pool).append_creates([prepare_event("create", create_data(), user_id="alice")])
