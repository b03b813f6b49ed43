"""Cancellation that reaches running work, step 4 of issue 18: a job cancelled elsewhere stops its
handler within a second, and nothing the handler reports afterwards is stored."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.waiting import eventually
from tests.support.workers import Spawn, ended, events_of, running_in_process, worker_spawner
from tests.support.workers import create_job_named as create
from videojobs import JobContext, Worker
from videojobs.worker import JobLost


@pytest.fixture
async def spawn_worker(database_url: str) -> AsyncIterator[Spawn]:
    async with worker_spawner(database_url) as spawn:
        yield spawn


async def test_a_cancel_stops_the_running_handler_within_a_second(manager_with_listeners, spawn_worker) -> None:
    manager = manager_with_listeners  # the change feed tells the worker: the projector must run
    jobs = [await create(manager, "hang.mp4") for _ in range(3)]
    worker = await spawn_worker("--concurrency", "3", "--lease", "60")  # a heartbeat would come after 20 s
    for job in jobs:
        await worker.line_with("started", job.job_id, 1)
    for job in jobs:
        cancelled_at = time.time()
        await manager.cancel_job(job.job_id, reason="user changed their mind")
        line = await worker.line_with("cancelled", job.job_id, 1, within=5)
        latency = float(line.split()[3]) - cancelled_at
        print(f"cancel reached the handler in {latency * 1000:.0f} ms")
        assert latency < 1.0
    # The worker logged each job lost (stderr, its own pipe: waited for, not assumed) and reported nothing.
    await eventually(lambda: lost_jobs(worker) == {str(job.job_id) for job in jobs}, within=5)
    for job in jobs:
        assert [e.type for e in await events_of(manager, job.job_id)] == ["create", "start", "cancel"]


def lost_jobs(worker) -> set[str]:
    records = [json.loads(line) for line in worker.stderr.splitlines() if line.startswith("{")]
    return {r["job_id"] for r in records if r.get("event") == "worker_job_lost"}


async def test_a_handler_cannot_report_after_its_job_was_cancelled(manager_with_listeners) -> None:
    manager = manager_with_listeners  # the change feed tells the worker: the projector must run
    job = await create(manager, "ok.mp4")
    worker = Worker(manager=manager, poll_interval=0.05, lease_seconds=60)
    started, tried = asyncio.Event(), []

    @worker.handler
    async def handler(job, ctx: JobContext):
        started.set()
        try:
            await asyncio.sleep(3600)  # the handler's work: it runs until cancelled
        except asyncio.CancelledError:
            try:  # a handler that tries to report while cleaning up is refused by the runtime
                await ctx.progress(percent=99)
            except JobLost as exc:
                tried.append(exc)
            raise
        return ["/never.mp4"]

    async with running_in_process(worker):
        await asyncio.wait_for(started.wait(), 20)
        await manager.cancel_job(job.job_id)
        result = await ended(worker, job.job_id, timeout=5)
    assert result.outcome == "lost" and len(tried) == 1
    assert [e.type for e in await events_of(manager, job.job_id)] == ["create", "start", "cancel"]
