"""Prompt wake-up, step 6 of issue 18: an idle worker starts a new job when it is created, not at its next poll."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.workers import Spawn, events_of, worker_spawner
from tests.support.workers import create_job_named as create


@pytest.fixture
async def spawn_worker(database_url: str) -> AsyncIterator[Spawn]:
    async with worker_spawner(database_url) as spawn:
        yield spawn


async def test_an_idle_worker_starts_a_created_job_long_before_its_next_poll(manager_with_listeners,
                                                                              spawn_worker) -> None:
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


async def test_an_idle_worker_wakes_when_a_requeued_jobs_delay_is_over_not_at_its_next_poll(
        manager_with_listeners, spawn_worker) -> None:
    """The requeue's notice finds the job held back; the worker asks the database when the earliest held-back
    job may be claimed (vjm.next_claimable_in) and sleeps exactly that long, not its 30 s poll interval."""
    manager = manager_with_listeners  # the requeue's notice wakes the worker: the projector must run
    worker = await spawn_worker("--poll-interval", "30")
    job = await create(manager, "retry-0.8.mp4", max_attempts=2)
    first = float((await worker.line_with("started", job.job_id, 1, within=10)).split()[4])
    second_line = await worker.line_with("started", job.job_id, 2, within=10)
    requeue = [e for e in await events_of(manager, job.job_id) if e.type == "requeue"][0]
    second = float(second_line.split()[4])
    waited = second - requeue.occurred_at.timestamp()
    print(f"requeued with retry_after 0.8 s: started again {waited * 1000:.0f} ms after the requeue "
          f"({(second - first) * 1000:.0f} ms after the first start)")
    assert 0.8 <= waited < 2.0  # not before its delay; and not at the next poll, 30 s on


async def test_next_claimable_in_names_the_earliest_held_back_job_of_a_platform(manager) -> None:
    assert await manager.processors.next_claimable_in() is None  # nothing held back
    jobs = [await create(manager, "ok.mp4", platform_target="tiktok") for _ in range(2)]
    for job, after in zip(jobs, (30, 60), strict=True):
        [attempt] = [a for a in await manager.claim_jobs("test-claimer", 1) if a.job_id == job.job_id]
        await manager.processors.requeue_job(job.job_id, attempt.attempt, error="busy", retry_after=after)
    assert 28 < await manager.processors.next_claimable_in() <= 30
    assert 28 < await manager.processors.next_claimable_in("tiktok") <= 30
    assert await manager.processors.next_claimable_in("youtube_shorts") is None


async def test_a_resume_wakes_an_idle_worker_at_once_not_at_its_next_poll(manager_with_listeners,
                                                                          spawn_worker) -> None:
    """Claims paused: the worker finds nothing and idles. The resume's `vjm_queue` notice wakes it."""
    manager = manager_with_listeners
    worker = await spawn_worker("--poll-interval", "30")
    first = await create(manager, "ok.mp4")
    await worker.line_with("started", first.job_id)  # from here on it idles on its 30 s poll
    await manager.queue.pause(reason="maintenance")
    job = await create(manager, "ok.mp4")  # its notice wakes the worker; the claim finds claims paused
    await manager.maintenance.wait_for_projection()
    assert (await manager.get_job_by_id(job.job_id)).status == "queued"
    resumed_at = time.time()
    await manager.queue.resume()
    line = await worker.line_with("started", job.job_id, within=10)
    waited = float(line.split()[4]) - resumed_at
    print(f"started {waited * 1000:.0f} ms after the resume")
    assert waited < 2.0  # woken by the resume: a poll would take up to 30 s
