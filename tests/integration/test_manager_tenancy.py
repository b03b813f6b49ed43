"""The manager under Row Level Security: A and B share team T1, C is alone in T2."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest

from tests.support.factories import create_data
from videojobs import AccessDenied, JobNotFound, VideoJobManager

JOB = create_data()


@dataclass
class World:
    t1: UUID
    t2: UUID
    jobs: dict[str, UUID]  # label -> job id


async def build_world(manager: VideoJobManager) -> World:
    """A and B share team T1, C owns T2; each creates a job as the user, A also one in T1."""
    t1 = (await manager.teams.create("T1", "A")).team_id
    await manager.teams.add_member(t1, "B")
    t2 = (await manager.teams.create("T2", "C")).team_id
    a, b, c = manager.as_user("A"), manager.as_user("B"), manager.as_user("C")
    jobs = {
        "a_private": (await a.create_job(user_id="A", **JOB)).job_id,
        "a_team": (await a.create_job(user_id="A", team_id=t1, **JOB)).job_id,
        "b_private": (await b.create_job(user_id="B", **JOB)).job_id,
        "c_team": (await c.create_job(user_id="C", team_id=t2, **JOB)).job_id,
    }
    return World(t1, t2, jobs)


@pytest.fixture
async def world(manager: VideoJobManager) -> World:
    """The world (build_world), made through the plain manager."""
    return await build_world(manager)


@pytest.fixture
async def world_with_listeners(manager_with_listeners: VideoJobManager) -> World:
    """The world (build_world), made through the manager whose projector runs."""
    return await build_world(manager_with_listeners)


VISIBLE = {"A": {"a_private", "a_team"}, "B": {"b_private", "a_team"}, "C": {"c_team"}}


@pytest.mark.parametrize("user", ["A", "B", "C"])
async def test_each_user_sees_exactly_their_jobs(manager_with_listeners: VideoJobManager, world_with_listeners: World, user: str) -> None:
    scoped = manager_with_listeners.as_user(user)
    expected = {world_with_listeners.jobs[label] for label in VISIBLE[user]}
    assert {j.job_id for j in (await scoped.list_jobs(limit=100)).items} == expected
    for label, job_id in world_with_listeners.jobs.items():
        if label in VISIBLE[user]:
            assert (await scoped.get_job_by_id(job_id)).job_id == job_id
            assert len(await scoped.get_job_history(job_id)) == 1
        else:
            with pytest.raises(JobNotFound):
                await scoped.get_job_by_id(job_id)
            with pytest.raises(JobNotFound):
                await scoped.get_job_history(job_id)
            with pytest.raises(JobNotFound):
                await scoped.cancel_job(job_id)
    others = {"A": "C", "B": "C", "C": "A"}[user]
    with pytest.raises(AccessDenied):  # one rule with HTTP's 403: a user lists their own user scope only
        await scoped.get_user_jobs(others)
    with pytest.raises(AccessDenied):
        await scoped.get_job_stats(user_id=others)
    events = await scoped.audit.find_events(limit=100)
    assert {e.job_id for e in events.items} == expected


async def test_team_members_see_team_jobs_and_stats(manager_with_listeners: VideoJobManager, world_with_listeners: World) -> None:
    b = manager_with_listeners.as_user("B")
    assert [j.job_id for j in (await b.get_team_jobs(world_with_listeners.t1)).items] == [world_with_listeners.jobs["a_team"]]
    assert (await b.get_job_stats(team_id=world_with_listeners.t1)).total_jobs == 1
    assert (await b.get_team_jobs(world_with_listeners.t2)).items == []
    assert (await b.get_job_stats(team_id=world_with_listeners.t2)).total_jobs == 0


async def test_a_user_cannot_create_for_someone_else_or_another_team(manager: VideoJobManager, world: World) -> None:
    a = manager.as_user("A")
    with pytest.raises(AccessDenied):
        await a.create_job(user_id="B", **JOB)
    with pytest.raises(AccessDenied):
        await a.create_job(user_id="A", team_id=world.t2, **JOB)


async def test_users_may_not_fire_processor_triggers(manager: VideoJobManager, world: World) -> None:
    a = manager.as_user("A")
    with pytest.raises(AccessDenied):
        await a.start_processing(world.jobs["a_private"])
    with pytest.raises(AccessDenied):
        await a.claim_jobs("sneaky-worker")
    cancelled = await a.cancel_job(world.jobs["a_private"])
    assert cancelled.status == "cancelled"


async def test_team_member_may_act_on_a_team_job_and_is_recorded_as_themselves(manager: VideoJobManager,
                                                                               world: World) -> None:
    b = manager.as_user("B")
    await b.cancel_job(world.jobs["a_team"])
    history = await manager.get_job_history(world.jobs["a_team"])
    assert [(e.type, e.actor) for e in history] == [("create", "A"), ("cancel", "B")]


async def test_membership_changes_take_effect_on_the_next_call(manager: VideoJobManager, world: World) -> None:
    b = manager.as_user("B")
    assert (await b.get_job_by_id(world.jobs["a_team"])).job_id == world.jobs["a_team"]
    await manager.teams.remove_member(world.t1, "B")
    with pytest.raises(JobNotFound):
        await b.get_job_by_id(world.jobs["a_team"])


async def test_a_teammates_user_scope_is_refused_not_answered_with_a_wrong_total(manager_with_listeners: VideoJobManager,
                                                                               world_with_listeners: World) -> None:
    """B sees A's team job, but not A's user scope: the manager refuses as HTTP does (403), where
    it used to answer one row with a total of 0 (the counters of a scope B may not read)."""
    b = manager_with_listeners.as_user("B")
    with pytest.raises(AccessDenied):
        await b.get_user_jobs("A")
    own = await b.get_user_jobs("B")
    assert own.total == len(own.items) == 1
    visible = await b.list_jobs(limit=100)
    assert visible.total == len(visible.items) == 2
