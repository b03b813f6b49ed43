"""Prompt wake-up, step 6 of issue 18: an idle worker starts a new job when it is created, not at its next poll."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.workers import Spawn, worker_spawner
from tests.support.workers import create_job_named as create


@pytest.fixture
async def spawn_worker(database_url: str) -> AsyncIterator[Spawn]:
    async with worker_spawner(database_url) as spawn:
        yield spawn


async def test_an_idle_worker_starts_a_created_job_long_before_its_next_poll(manager_with_listeners, spawn_worker) -> None:
    manager = manager_with_listeners  # the change feed wakes the worker: the projector must run
    worker = await spawn_worker("--poll-interval", "30")
    first = await create(manager, "ok.mp4")  # the worker's first poll finds this one; from then on it idles
    await worker.line_with("started", first.job_id)
    latencies = []
    for _ in range(30):
        created_at = time.time()
        job = await create(manager, "ok.mp4")
        line = await worker.line_with("started", job.job_id, within=10)
        latencies.append(float(line.split()[4]) - created_at)
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[-1]
    print(f"create-to-start with an idle worker: p50 {p50 * 1000:.0f} ms, max {p99 * 1000:.0f} ms (30 jobs)")
    assert p99 < 2.0  # woken by the change feed: a poll would take up to 30 s
