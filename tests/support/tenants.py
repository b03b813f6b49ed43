"""Three tenants for the security tests: alice and bob share team T1, carol is alone in T2.

Each creates a personal job and a team job through `acting_as`; processors move them on (so
events carry paths and error texts that must not leak), and the projector, run in the test's
task as vjm_projector, fills the read models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from store import EventStore, prepare_event
from store.identity import AUTHENTICATED, acting_as
from store.models import Event
from store.teams import add_team_member, create_team
from tests.support.factories import create_data
from tests.support.projections import project_all

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
