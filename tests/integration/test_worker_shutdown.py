"""Graceful shutdown, step 2 of issue 18: SIGTERM lets handlers finish, then cancels and releases the rest."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest

from statemachine import StaleAttempt
from tests.support.waiting import eventually
from tests.support.workers import Spawn, events_of, status_is, worker_spawner
from tests.support.workers import create_job_named as create


@pytest.fixture
async def spawn_worker(database_url: str) -> AsyncIterator[Spawn]:
    async with worker_spawner(database_url) as spawn:
        yield spawn


async def test_sigterm_lets_a_handler_finish_within_the_timeout_and_claims_nothing_more(manager, spawn_worker) -> None:
    job = await create(manager, "slow-1.5.mp4")
    worker = await spawn_worker("--shutdown-timeout", "20")
    await worker.line_with("started", job.job_id)
    worker.send(signal.SIGTERM)
    late = await create(manager, "ok.mp4")  # queued after the signal: this worker no longer claims
    await worker.line_with("finished", job.job_id)
    assert await worker.wait() == 0
    assert (await manager.get_job_by_id(job.job_id)).status == "completed"
    assert (await manager.get_job_by_id(late.job_id)).status == "queued"
    assert worker.matching("started", late.job_id) == []


async def test_sigterm_cancels_a_handler_past_the_timeout_and_releases_its_job(manager, spawn_worker) -> None:
    job = await create(manager, "hang.mp4", max_attempts=2)
    worker = await spawn_worker("--shutdown-timeout", "0.5")
    await worker.line_with("started", job.job_id)
    worker.send(signal.SIGTERM)
    await worker.line_with("cancelled", job.job_id)  # the handler saw CancelledError and could clean up
    assert await worker.wait() == 0
    released = await manager.get_job_by_id(job.job_id)
    assert (released.status, released.attempt, released.attempts_left, released.worker_id) == ("queued", 1, 2, None)
    release = (await events_of(manager, job.job_id))[-1]
    assert (release.type, release.attempt, release.data) == ("release", 1, {"reason": "worker shutting down"})
    assert release.actor.count(":") == 2  # the worker that held the attempt, not a database login
    # The release is fenced by the attempt like every report: the next worker's attempt is 2, and 1 is stale.
    await manager.claim_jobs("next-worker", 1)
    with pytest.raises(StaleAttempt):
        await manager.processors.release_job(job.job_id, 1)


async def test_a_second_signal_exits_at_once(manager, spawn_worker) -> None:
    job = await create(manager, "hang.mp4")
    worker = await spawn_worker("--shutdown-timeout", "60")
    await worker.line_with("started", job.job_id)
    worker.send(signal.SIGTERM)
    await eventually(lambda: "worker_draining" in worker.stderr, within=10)
    worker.send(signal.SIGINT)
    assert await worker.wait(within=5) == 128 + signal.SIGINT
    assert await status_is(manager, job.job_id, "processing")  # nothing released: its lease will run out
