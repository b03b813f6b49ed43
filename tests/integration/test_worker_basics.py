"""videojobs.Worker, step 1 of issue 18: real `vjm worker` processes claim, complete, fail and re-queue jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.waiting import eventually
from tests.support.workers import Spawn, ended, events_of, running_in_process, status_is, worker_spawner
from tests.support.workers import create_job_named as create
from videojobs import Retry, TransientError, Worker
from videojobs.worker.errors import backoff_delay, error_text


@pytest.fixture
async def spawn_worker(database_url: str) -> AsyncIterator[Spawn]:
    async with worker_spawner(database_url) as spawn:
        yield spawn


async def test_a_worker_completes_jobs_with_the_returned_paths_and_its_own_timing(manager, spawn_worker) -> None:
    jobs = [await create(manager, "ok.mp4") for _ in range(6)]
    worker = await spawn_worker("--concurrency", "3")
    for job in jobs:
        await eventually(lambda j=job: status_is(manager, j.job_id, "completed"), within=30)
    for job in jobs:
        done = await manager.get_job_by_id(job.job_id)
        assert done.output_paths == [f"/out/{job.job_id}/clip1.mp4", f"/out/{job.job_id}/clip2.mp4"]
        assert done.processing_time is not None and done.processing_time >= 0
        assert done.worker_id and done.worker_id.count(":") == 2  # host:pid:random
        completes = [e for e in await events_of(manager, job.job_id) if e.type == "complete"]
        assert len(completes) == 1 and completes[0].actor == done.worker_id  # the worker's own report
    assert len(worker.matching("started")) == 6


async def test_an_exception_fails_the_job_with_bounded_error_text(manager, spawn_worker) -> None:
    job = await create(manager, "boom.mp4", max_attempts=3)
    await spawn_worker()
    await eventually(lambda: status_is(manager, job.job_id, "failed"), within=30)
    failed = await manager.get_job_by_id(job.job_id)
    assert failed.error_message.startswith("RuntimeError: encoder exploded\ufffd xxx")
    assert len(failed.error_message) == 4000 and failed.error_message.endswith("\u2026")
    assert failed.attempts_left == 2  # a plain exception fails the job: no automatic retry


async def test_retry_requeues_and_is_not_claimable_before_its_delay(manager, spawn_worker) -> None:
    job = await create(manager, "retry-1.5.mp4", max_attempts=2)
    worker = await spawn_worker()
    await worker.line_with("started", job.job_id, 1)
    await eventually(lambda: status_is(manager, job.job_id, "queued"), within=30)
    requeue = [e for e in await events_of(manager, job.job_id) if e.type == "requeue"][0]
    assert requeue.data == {"error": "Retry: encoder busy", "retry_after": 1.5}
    # Queued, but no claimer gets it before its time: not this test's claim either.
    assert [a for a in await manager.claim_jobs("test-claimer", 10) if a.job_id == job.job_id] == []
    await worker.line_with("started", job.job_id, 2, within=30)
    events = await events_of(manager, job.job_id)
    second_start = [e for e in events if e.type == "start"][1]
    assert (second_start.occurred_at - requeue.occurred_at).total_seconds() >= 1.5
    # The second Retry finds no attempt left: the job fails with the error.
    await eventually(lambda: status_is(manager, job.job_id, "failed"), within=30)
    assert (await manager.get_job_by_id(job.job_id)).error_message == "Retry: encoder busy"


async def test_a_transient_error_requeues_with_exponential_backoff(manager) -> None:
    job = await create(manager, "transient.mp4", max_attempts=3)
    worker = Worker(manager=manager, poll_interval=0.05, backoff_base=0.2, backoff_max=10)

    @worker.handler
    async def handler(job, ctx):
        raise TransientError("storage unreachable")

    async with running_in_process(worker):
        ends = [await ended(worker, job.job_id) for _ in range(3)]
    assert [r.outcome for r in ends] == ["requeued", "requeued", "failed"]
    delays = [e.data["retry_after"] for e in await events_of(manager, job.job_id) if e.type == "requeue"]
    assert delays == [0.2, 0.4, 0.8]


def test_backoff_doubles_up_to_its_ceiling_and_error_text_is_storable() -> None:
    assert [backoff_delay(n, 1.0, 5.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert error_text(ValueError("")) == "ValueError"
    assert error_text(ValueError("a\ud800b")) == "ValueError: a\ufffdb"
    with pytest.raises(ValueError):
        Retry(after=-1)


async def test_a_handler_returning_bad_paths_fails_the_job(manager) -> None:
    job = await create(manager, "ok.mp4")
    worker = Worker(manager=manager, poll_interval=0.05)

    @worker.handler
    async def handler(job, ctx):
        return "/not/a/list.mp4"

    async with running_in_process(worker):
        result = await ended(worker, job.job_id)
    assert result.outcome == "failed"
    assert "no valid output paths" in (await manager.get_job_by_id(job.job_id)).error_message
