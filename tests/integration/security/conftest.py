"""Fixtures for the security tests: real non-superuser roles, three tenants, their jobs.

Users alice and bob share team T1; carol is alone in T2. Each creates a personal job
and a team job through `acting_as`, processors move them on (so events carry paths and
error texts), and the projector, running as vjm_projector, fills the read models.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
import pytest

from listeners import project_batch
from store import EventStore, prepare_event
from store.identity import AUTHENTICATED, acting_as, connect_as, create_role_pool
from store.models import Event
from store.teams import add_team_member, create_team
from tests.factories import create_data
from tests.support.waiting import eventually

USERS = ("alice", "bob", "carol")
SECRET_FILENAME = "secret-merger-plans.mp4"
SECRET_PATH = "/private/out/secret-clip.mp4"
SECRET_ERROR = "ffmpeg exploded on secret frame"


@dataclass
class Tenants:
    """Who is in which team, and every job each user created."""

    team1: UUID
    team2: UUID
    jobs: dict[UUID, tuple[str, UUID | None]] = field(default_factory=dict)  # job -> (user, team)

    def teams_of(self, user: str) -> set[UUID]:
        """The teams a user belongs to."""
        return {"alice": {self.team1}, "bob": {self.team1}, "carol": {self.team2}}.get(user, set())

    def visible_to(self, user: str | None) -> set[UUID]:
        """Jobs this user may see: their own, and their teams'."""
        if user is None:
            return set()
        return {j for j, (owner, team) in self.jobs.items() if owner == user or team in self.teams_of(user)}

    def hidden_from(self, user: str | None) -> set[UUID]:
        """Jobs this user must not see."""
        return set(self.jobs) - self.visible_to(user)


@pytest.fixture
async def user_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """vjm_app with no session role: nothing works outside acting_as()."""
    pool = await create_role_pool(database_url, role=None, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def processor_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """vjm_app acting as vjm_processor for its whole session (the trusted hot path)."""
    pool = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=4)
    yield pool
    await pool.close()


async def project_all(database_url: str) -> None:
    """Run the projector's batches as vjm_projector until it has caught up."""
    conn = await connect_as(database_url, role="vjm_projector")
    try:
        async def caught_up() -> bool:
            batch = await project_batch(conn, "main", batch_size=1000, per_job_limit=10)
            return batch.events == 0 and await conn.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM vjm.job_events e, vjm.projection_checkpoints c "
                "WHERE c.name = 'main' AND (e.xact_id, e.position) > (c.xact_id, c.position))")
        await eventually(caught_up)
    finally:
        await conn.close()




async def as_user(pool: asyncpg.Pool, user: str, trigger: str, data: dict, **kwargs) -> Event:
    """Append one event as an end user, in its own transaction."""
    async with acting_as(pool, role=AUTHENTICATED, user_id=user) as conn:
        return await EventStore(conn).append(prepare_event(trigger, data, **kwargs))


async def build_tenants(user_pool: asyncpg.Pool, processor_pool: asyncpg.Pool, database_url: str) -> Tenants:
    """Teams, memberships and jobs for alice, bob (T1) and carol (T2), projected."""
    async with acting_as(user_pool, user_id="alice") as conn:
        team1 = await create_team(conn, "T1", owner_id="alice")
        await add_team_member(conn, team1.team_id, "bob")
    async with acting_as(user_pool, user_id="carol") as conn:
        team2 = await create_team(conn, "T2", owner_id="carol")
    tenants = Tenants(team1.team_id, team2.team_id)
    processor = EventStore(processor_pool)
    for user in USERS:
        team = next(iter(tenants.teams_of(user)))
        for team_id in (None, team):
            job = await as_user(user_pool, user, "create", create_data(original_filename=SECRET_FILENAME),
                                user_id=user, team_id=team_id)
            tenants.jobs[job.job_id] = (user, team_id)
            started = await processor.append(prepare_event("start", {"worker_id": "w1"}, job_id=job.job_id))
            if team_id is None:
                await processor.append(prepare_event("complete", {"output_paths": [SECRET_PATH]},
                                                     job_id=job.job_id, attempt=started.attempt))
            else:
                await processor.append(prepare_event("fail", {"error": SECRET_ERROR}, job_id=job.job_id,
                                                     attempt=started.attempt))
    await project_all(database_url)
    return tenants


@pytest.fixture
async def tenants(user_pool: asyncpg.Pool, processor_pool: asyncpg.Pool, database_url: str) -> Tenants:
    """Three users in two teams with six projected jobs (see the module docstring)."""
    return await build_tenants(user_pool, processor_pool, database_url)
