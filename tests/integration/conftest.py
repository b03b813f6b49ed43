"""Fixtures for the listener tests: projectors that are always stopped, random workloads.

A projector made here starts only when the test starts it (or runs it once); nothing runs in
the background unless the test says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from listeners import Projector, ProjectorConfig
from store import EventStore
from store.models import Event
from tests.support.workloads import random_workload

TEAM_NAMES = ["studio", "agency"]  # created per database: the database issues team ids
USERS = ["alice", "bob", "carol", "dave"]


@pytest.fixture
async def make_projector(database_url: str) -> AsyncIterator[Callable[..., Projector]]:
    """A factory of projectors on this test's database, not started; all are stopped at the end."""
    made: list[Projector] = []

    def _make(**overrides: Any) -> Projector:
        projector = Projector(ProjectorConfig(database_url=database_url, **overrides))
        made.append(projector)
        return projector

    yield _make
    for projector in made:
        await projector.stop()


@pytest.fixture
def workload(store: EventStore, pool) -> Callable[..., Any]:
    """`await workload(jobs=20, seed=1, concurrency=4)`: a random committed workload (tests.support.workloads)."""
    async def _run(jobs: int = 20, seed: int = 1, concurrency: int = 4, steps: int = 8) -> list[Event]:
        return await random_workload(store, pool, jobs=jobs, seed=seed, concurrency=concurrency, steps=steps)
    return _run
