"""The run queue (vjm.job_queue) and batch completion (complete_jobs, vjm.append_events)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from store import EventStore, connect, prepare_event
from store.projections import verify_projections
from tests.support.doorbell import ringing_doorbell
from tests.support.factories import create_data
from tests.support.waiting import eventually
from videojobs import AccessDenied, InvalidTransition, Settings, StaleAttempt, ValidationError, VideoJobManager
from videojobs import connect as connect_manager

JOB = create_data(user_id="u1")
OUTPUTS = ["/out/a.mp4"]

QUEUED_HEADS = """
SELECT coalesce(array_agg(job_id ORDER BY job_id), '{}') FROM (
    SELECT DISTINCT ON (job_id) job_id, to_state FROM vjm.job_events ORDER BY job_id, version DESC) h
 WHERE to_state = 'queued'
"""
QUEUE = "SELECT coalesce(array_agg(job_id ORDER BY job_id), '{}') FROM vjm.job_queue"


async def test_the_queue_holds_exactly_the_jobs_whose_head_is_queued(pool, workload) -> None:
    await workload(jobs=30, seed=7, concurrency=6, steps=10)  # mostly to an end state, through retries
    await workload(jobs=30, seed=8, concurrency=6, steps=2)   # many still queued
    assert await pool.fetchval(QUEUE) == await pool.fetchval(QUEUED_HEADS)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_queue") > 0  # the workload left some queued


async def test_claims_do_not_need_the_projector(database_url: str) -> None:
    async with connect_manager(settings=Settings(database_url=database_url), listeners=False) as manager:
        created = [await manager.create_job(**JOB) for _ in range(3)]
        got = await manager.claim_jobs("w", limit=5)
    assert [a.job_id for a in got] == [job.job_id for job in created]  # oldest first, none projected yet
    assert all(a.job.status == "processing" and a.job.worker_id == "w" and a.attempt == 1 for a in got)
    assert got[0].job.original_filename == JOB["original_filename"]


async def test_a_requeued_job_keeps_its_place_and_its_current_platform(manager: VideoJobManager) -> None:
    first = await manager.create_job(**JOB)
    second = await manager.create_job(**JOB)
    [attempt] = await manager.claim_jobs("w", limit=1)
    assert attempt.job_id == first.job_id
    await manager.fail_job(first.job_id, "boom", attempt=attempt.attempt)
    await manager.update_job_metadata(first.job_id, platform_target="instagram")
    await manager.retry_job(first.job_id)
    assert [a.job_id for a in await manager.claim_jobs("w", limit=5, platform_target="tiktok")] == [second.job_id]
    [again] = await manager.claim_jobs("w", limit=5, platform_target="instagram")
    assert again.job_id == first.job_id and again.attempt == 2


async def test_a_metadata_change_while_queued_moves_the_job_between_platforms(manager: VideoJobManager) -> None:
    job = await manager.create_job(**JOB)
    await manager.update_job_metadata(job.job_id, platform_target="youtube_shorts")
    assert await manager.claim_jobs("w", platform_target="tiktok") == []
    assert [a.job_id for a in await manager.claim_jobs("w", platform_target="youtube_shorts")] == [job.job_id]


async def test_cancelled_and_deleted_jobs_leave_the_queue(manager: VideoJobManager, pool) -> None:
    cancelled = await manager.create_job(**JOB)
    deleted = await manager.create_job(**JOB)
    await manager.cancel_job(cancelled.job_id)
    await manager.delete_job(deleted.job_id)
    assert await manager.claim_jobs("w", limit=5) == []
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_queue") == 0


async def test_a_cancel_racing_a_claim_waits_for_it_instead_of_deadlocking(database_url: str, store: EventStore,
                                                                            pool) -> None:
    job = await store.append(prepare_event("create", create_data(), user_id="u1"))
    claimer, canceller = await connect(database_url), await connect(database_url)
    try:
        tx = claimer.transaction()
        await tx.start()
        claimed = await claimer.fetch("SELECT job_id FROM vjm.claim_jobs('w', 1)")
        assert {r["job_id"] for r in claimed} == {job.job_id}
        cancel = asyncio.create_task(EventStore(canceller).append(
            prepare_event("cancel", {"reason": "changed my mind"}, job_id=job.job_id)))
        await eventually(lambda: pool.fetchval(  # the cancel waits on the claim's queue row
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", canceller.get_server_pid()))
        await tx.commit()
        cancelled = await asyncio.wait_for(cancel, 10)
    finally:
        await claimer.close()
        await canceller.close()
    assert (cancelled.from_state, cancelled.to_state) == ("processing", "cancelled")
    assert [e.type for e in await store.read_stream(job.job_id)] == ["create", "start", "cancel"]


async def test_complete_jobs_completes_a_claimed_batch(manager_with_listeners: VideoJobManager) -> None:
    await manager_with_listeners.bulk_create_jobs([JOB] * 120)
    attempts = await manager_with_listeners.claim_jobs("w", limit=120)
    results = await manager_with_listeners.complete_jobs([
        {"job_id": a.job_id, "attempt": a.attempt, "output_paths": OUTPUTS, "processing_time": 2.5}
        for a in attempts])
    assert [r.job_id for r in results] == [str(a.job_id) for a in attempts]
    assert all(r.ok and r.job.status == "completed" and r.job.output_paths == OUTPUTS for r in results)
    assert all(r.job.processing_time == 2.5 and r.job.version == 3 for r in results)
    stats = await manager_with_listeners.get_job_stats()
    assert stats.completed_jobs == 120 and stats.processing_jobs == 0


async def test_complete_jobs_without_jobs_still_judges_each_completion(manager: VideoJobManager, pool) -> None:
    """with_jobs=False (the worker runtime's batches): the same judgement, no job rows back."""
    await manager.bulk_create_jobs([JOB] * 2)
    good, stale = await manager.claim_jobs("w", limit=2)
    await manager.fail_job(stale.job_id, "lost", attempt=stale.attempt)
    results = await manager.complete_jobs([
        {"job_id": good.job_id, "attempt": good.attempt, "output_paths": OUTPUTS},
        {"job_id": stale.job_id, "attempt": stale.attempt, "output_paths": OUTPUTS}], with_jobs=False)
    assert [(r.ok, r.job, r.error_type) for r in results] == [
        (True, None, None), (False, None, InvalidTransition.__name__)]
    head = await pool.fetchrow("SELECT type, data FROM vjm.job_events WHERE job_id = $1 ORDER BY version DESC LIMIT 1",
                               good.job_id)
    assert head["type"] == "complete" and head["data"]["output_paths"] == OUTPUTS
    assert (await manager.get_job_by_id(good.job_id)).status == "completed"


async def test_complete_jobs_reports_each_refusal_and_applies_the_rest(manager: VideoJobManager, pool) -> None:
    await manager.bulk_create_jobs([JOB] * 3)
    good, stale, _ = await manager.claim_jobs("w", limit=3)
    await manager.fail_job(stale.job_id, "lost", attempt=stale.attempt)
    await manager.retry_job(stale.job_id)
    [restarted] = await manager.claim_jobs("w2", limit=1)
    assert restarted.job_id == stale.job_id and restarted.attempt == 2
    queued = await manager.create_job(**JOB)
    unknown = uuid.uuid4()
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    results = await manager.complete_jobs([
        {"job_id": good.job_id, "attempt": good.attempt, "output_paths": OUTPUTS},
        {"job_id": stale.job_id, "attempt": stale.attempt, "output_paths": OUTPUTS},
        {"job_id": queued.job_id, "attempt": 1, "output_paths": OUTPUTS},
        {"job_id": unknown, "attempt": 1, "output_paths": OUTPUTS},
    ])
    assert [(r.ok, r.error_type) for r in results] == [
        (True, None), (False, StaleAttempt.__name__), (False, InvalidTransition.__name__), (False, "JobNotFound")]
    assert "attempt 1 is stale, current attempt is 2" in results[1].error
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before + 1
    assert (await manager.get_job_by_id(stale.job_id)).status == "processing"


async def test_a_user_may_not_complete_jobs(manager: VideoJobManager) -> None:
    job = await manager.create_job(**JOB)
    [attempt] = await manager.claim_jobs("w")
    [result] = await manager.as_user("u1").complete_jobs([{"job_id": job.job_id, "attempt": attempt.attempt}])
    assert not result.ok and result.error_type == AccessDenied.__name__
    assert (await manager.get_job_by_id(job.job_id)).status == "processing"


@pytest.mark.parametrize(("completions", "field"), [
    ([], "completions"),
    ("nope", "completions"),
    ([{"job_id": "not-a-uuid", "attempt": 1}], "completions.0.job_id"),
    ([{"job_id": str(uuid.uuid4()), "attempt": 1}, {"job_id": str(uuid.uuid4()), "attempt": 0}],
     "completions.1.attempt"),
    ([{"job_id": str(uuid.uuid4()), "attempt": 1, "colour": "red"}], "completions.0.colour"),
    ([{"job_id": str(uuid.uuid4()), "attempt": 1, "output_paths": "x"}], "completions.0.output_paths"),
])
async def test_a_malformed_completion_is_refused_before_anything_is_written(
        manager: VideoJobManager, pool, completions, field) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    with pytest.raises(ValidationError) as info:
        await manager.complete_jobs(completions)
    assert info.value.field == field
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_append_events_takes_at_most_fifty_per_call(pool) -> None:
    ids = [uuid.uuid4()] * 51
    with pytest.raises(asyncpg.InvalidParameterValueError, match="at most 50"):
        await pool.fetch("SELECT * FROM vjm.append_events($1, $2, $3, $4, $5, $6)", ids, ["complete"] * 51,
                         ["{}"] * 51, [None] * 51, [1] * 51, [None] * 51)


async def test_verify_checks_the_run_queue_against_the_log(database_url: str, pool, workload, make_projector) -> None:
    await workload(jobs=20, seed=8, concurrency=4, steps=2)
    await make_projector().run_once()
    assert (await verify_projections(database_url)).ok
    lost, moved = await pool.fetch("SELECT job_id FROM vjm.job_queue ORDER BY job_id LIMIT 2")
    await pool.execute("DELETE FROM vjm.job_queue WHERE job_id = $1", lost["job_id"])
    await pool.execute("UPDATE vjm.job_queue SET platform_target = 'myspace' WHERE job_id = $1", moved["job_id"])
    result = await verify_projections(database_url)
    found = {(d.key, d.kind, d.columns) for d in result.differences if d.table == "job_queue"}
    assert found == {(str(lost["job_id"]), "missing", ()), (str(moved["job_id"]), "different", ("platform_target",))}


async def test_a_batch_rings_the_doorbell_once(database_url: str, manager: VideoJobManager) -> None:
    await manager.bulk_create_jobs([JOB] * 6)
    async with ringing_doorbell(database_url) as doorbells:
        attempts = await manager.claim_jobs("w", limit=6)
        done = await manager.complete_jobs([{"job_id": a.job_id, "attempt": a.attempt} for a in attempts])
        single = await manager.create_job(**JOB)
        await doorbells.settle()
        received = [await doorbells.next(5) for _ in range(3)]
        empty = doorbells.empty()
    assert received[0] == {"position": max(a.job.last_position for a in attempts), "count": 6}
    assert received[1] == {"position": max(r.job.last_position for r in done), "count": 6}
    assert received[2] == {"position": (await manager.get_job_history(single.job_id))[0].position, "count": 1}
    assert empty


async def test_complete_jobs_falls_back_to_one_by_one_when_another_writer_races_it(
        database_url: str, manager: VideoJobManager, pool) -> None:
    await manager.bulk_create_jobs([JOB] * 2)
    raced, other = await manager.claim_jobs("w", limit=2)
    writer = await connect(database_url)
    try:
        # Another writer's progress on `raced` is in flight: the batch's one INSERT collides with it.
        tx = writer.transaction()
        await tx.start()
        await EventStore(writer).append(prepare_event("progress", {"percent": 50.0}, job_id=raced.job_id,
                                                      attempt=raced.attempt))
        batch = asyncio.create_task(manager.complete_jobs([
            {"job_id": raced.job_id, "attempt": raced.attempt, "output_paths": OUTPUTS},
            {"job_id": other.job_id, "attempt": other.attempt, "output_paths": OUTPUTS}]))
        await eventually(lambda: pool.fetchval(  # the batch's INSERT waits on the writer's
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"))
        await tx.commit()
        results = await asyncio.wait_for(batch, 10)
    finally:
        await writer.close()
    assert [r.ok for r in results] == [True, True]
    assert [e.type for e in await EventStore(pool).read_stream(raced.job_id)] == ["create", "start", "progress",
                                                                                  "complete"]
    assert results[0].job.version == 4 and results[0].job.status == "completed"


async def test_bulk_status_changes_go_fifty_at_a_time_and_respect_tenancy(manager: VideoJobManager, pool) -> None:
    mine = await manager.bulk_create_jobs([JOB] * 120)
    theirs = await manager.create_job(**{**JOB, "user_id": "u2"})
    ids = [job.job_id for job in mine] + [theirs.job_id]
    results = await manager.as_user("u1").bulk_update_status(ids, "cancelled", reason="tidy up")
    assert [r.ok for r in results] == [True] * 120 + [False]
    assert results[-1].error_type == "JobNotFound"  # another user's job is invisible, not forbidden
    assert all(r.job.status == "cancelled" for r in results[:120])
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE type = 'cancel'") == 120
    assert (await manager.get_job_by_id(theirs.job_id)).status == "queued"
    deleted = await manager.as_user("u1").bulk_delete_jobs(ids[:60])
    assert all(r.ok and r.job is None for r in deleted)
    refused = await manager.bulk_update_status(ids[:2], "bogus")
    assert [(r.ok, r.error_type) for r in refused] == [(False, "ValidationError")] * 2


async def test_the_run_queue_is_vacuumed_after_a_few_thousand_dead_entries_whatever_its_size(pool) -> None:
    """Claims and ends leave dead entries where claims walk: autovacuum takes the table after 5,000 of them
    (PostgreSQL's threshold plus scale factor times the rows), not after a fifth of a large queue."""
    options = await pool.fetchval("SELECT reloptions FROM pg_class WHERE oid = 'vjm.run_queue'::regclass")
    settings = dict(o.split("=", 1) for o in options)
    million = 1_000_000
    threshold = float(settings["autovacuum_vacuum_threshold"]) + float(settings["autovacuum_vacuum_scale_factor"]) * million
    assert threshold <= 5_000
