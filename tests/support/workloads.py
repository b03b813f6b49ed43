"""Random committed workloads: jobs that take random legal transitions, some in teams, written concurrently."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any
from uuid import UUID

from statemachine import ConcurrencyConflict, InvalidTransition
from store import EventStore, prepare_event
from store.models import Event
from tests.support.factories import create_data

TEAM_NAMES = ["studio", "agency"]  # created per database: the database issues team ids
USERS = ["alice", "bob", "carol", "dave"]


def random_event_data(trigger: str, rng: random.Random, head: Event) -> dict[str, Any]:
    """Valid data for a `trigger` event on the job whose last event is `head`, drawn from `rng`."""
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


# The triggers a random job may take next, by its state (None: it stops there).
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
            head = await store.append(prepare_event(trigger, random_event_data(trigger, rng, head), job_id=head.job_id,
                                                    attempt=head.attempt if fenced else None))
        except (InvalidTransition, ConcurrencyConflict):
            continue  # e.g. start with no attempts left
        events.append(head)
    return events


async def random_workload(store: EventStore, pool, jobs: int = 20, seed: int = 1, concurrency: int = 4,
                          steps: int = 8) -> list[Event]:
    """`jobs` random jobs (see random_job) in the teams TEAM_NAMES, at most `concurrency` at a time; every event."""
    rng = random.Random(seed)
    seeds = [rng.random() for _ in range(jobs)]
    semaphore = asyncio.Semaphore(concurrency)

    teams = [await pool.fetchval("SELECT team_id FROM vjm.create_team($1, $2)", name, owner)
             for name, owner in zip(TEAM_NAMES, USERS, strict=False)]

    async def one(s: float) -> list[Event]:
        async with semaphore:
            return await random_job(store, random.Random(s), teams=teams, steps=steps)

    return [e for events in await asyncio.gather(*(one(s) for s in seeds)) for e in events]


async def project_workloads_in_small_batches(make_projector, workload, rounds: int = 4, first_seed: int = 10) -> list:
    """`rounds` workloads of 25 jobs (seeds first_seed, first_seed + 1, ...), each followed by one projector
    pass of batches of 7, so that batches end inside jobs and transactions; every event written."""
    projector = make_projector(batch_size=7)
    events = []
    for seed in range(first_seed, first_seed + rounds):
        events += await workload(jobs=25, seed=seed)
        await projector.run_once()
    return events
