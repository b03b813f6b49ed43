"""Fixtures for the listener tests: projectors that are always stopped, random workloads."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import pytest

from listeners import Projector, ProjectorConfig
from statemachine import ConcurrencyConflict, InvalidTransition
from store import EventStore, prepare_event
from store.models import Event
from store.projections import verify_projections
from tests.factories import create_data
from tests.support.waiting import eventually

TEAM_NAMES = ["studio", "agency"]  # created per database: the database issues team ids
USERS = ["alice", "bob", "carol", "dave"]


@pytest.fixture
async def make_projector(database_url: str) -> AsyncIterator[Callable[..., Projector]]:
    """A factory of projectors on this test's database; all are stopped at the end."""
    made: list[Projector] = []

    def _make(**overrides: Any) -> Projector:
        projector = Projector(ProjectorConfig(database_url=database_url, **overrides))
        made.append(projector)
        return projector

    yield _make
    for projector in made:
        await projector.stop()


def _data(trigger: str, rng: random.Random, head: Event) -> dict[str, Any]:
    if trigger == "start":
        return {"worker_id": f"w{rng.randint(1, 9)}"}
    if trigger == "progress":
        return {"percent": rng.choice([10, 33.5, 50, 99.9]), "clips_done": rng.randint(0, 5)}
    if trigger == "complete":
        paths = [f"/out/{head.job_id}/{i}.mp4" for i in range(rng.randint(0, 3))]
        return {"output_paths": paths, **({"processing_time": rng.choice([1.5, 42.125])} if rng.random() < .5 else {})}
    if trigger == "fail":
        return {"error": "Invalid video format"}
    if trigger == "time_out":
        return {"reason": "stuck", "idle_seconds": 901.5}
    if trigger == "update_metadata":
        return {"clip_count": rng.randint(1, 50), "platform_target": rng.choice(["tiktok", "instagram"])}
    return {}


CHOICES = {
    "queued": ["start", "start", "start", "cancel", "update_metadata", "delete"],
    "processing": ["progress", "progress", "complete", "complete", "fail", "cancel", "time_out", "update_metadata"],
    "completed": ["update_metadata", "delete", None, None],
    "failed": ["retry", "update_metadata", "delete", None],
    "cancelled": ["retry", "delete", None, None],
}


async def random_job(store: EventStore, rng: random.Random, *, teams: list[UUID], steps: int = 8,
                     pause: Callable[[], Any] | None = None) -> list[Event]:
    """Create one job (in one of `teams` or none) and take up to `steps` random legal transitions."""
    user = rng.choice(USERS)
    team = rng.choice([*teams, None])
    head = await store.append(prepare_event("create", create_data(max_attempts=rng.randint(1, 3)),
                                            user_id=user, team_id=team, actor=user))
    events = [head]
    for _ in range(steps):
        trigger = rng.choice(CHOICES.get(head.to_state.value, [None]))
        if trigger is None:
            break
        if pause is not None:
            await pause()
        fenced = trigger in ("progress", "complete", "fail", "time_out")
        try:
            head = await store.append(prepare_event(trigger, _data(trigger, rng, head), job_id=head.job_id,
                                                    attempt=head.attempt if fenced else None))
        except (InvalidTransition, ConcurrencyConflict):
            continue  # e.g. start with no attempts left
        events.append(head)
    return events


@pytest.fixture
def workload(store: EventStore, pool) -> Callable[..., Any]:
    """`await workload(jobs=20, seed=1, concurrency=4)`: a random committed workload."""
    async def _run(jobs: int = 20, seed: int = 1, concurrency: int = 4, steps: int = 8) -> list[Event]:
        rng = random.Random(seed)
        seeds = [rng.random() for _ in range(jobs)]
        semaphore = asyncio.Semaphore(concurrency)

        teams = [await pool.fetchval("SELECT team_id FROM vjm.create_team($1, $2)", name, owner)
                 for name, owner in zip(TEAM_NAMES, USERS, strict=False)]

        async def one(s: float) -> list[Event]:
            async with semaphore:
                return await random_job(store, random.Random(s), teams=teams, steps=steps)

        return [e for events in await asyncio.gather(*(one(s) for s in seeds)) for e in events]
    return _run


async def assert_read_model_is_fold(database_url: str) -> None:
    """Live projection == replay of the events, and stats == recount."""
    result = await verify_projections(database_url)
    assert result.ok, [d.model_dump(exclude={"live", "expected"}) for d in result.differences[:5]]




async def wait_caught_up(pool, name: str = "main", within: float = 20) -> None:
    """Poll until the checkpoint reaches the last committed event (commit order)."""
    async def caught_up() -> bool:
        last = await pool.fetchrow("SELECT xact_id, position FROM vjm.job_events ORDER BY xact_id DESC, "
                                   "position DESC LIMIT 1")
        cp = await pool.fetchrow("SELECT xact_id, position FROM vjm.projection_checkpoints WHERE name = $1", name)
        return last is None or (cp is not None and tuple(cp) >= tuple(last))
    await eventually(caught_up, within)
