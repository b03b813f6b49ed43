"""Processors, bulk operations, audit and consistency through the VideoJobManager."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.support.factories import create_data
from videojobs import (
    ConcurrencyConflict,
    InvalidTransition,
    JobNotFound,
    StaleAttempt,
    ValidationError,
    VideoJobManager,
)

JOB = create_data(user_id="u1")


async def test_four_concurrent_claimers_never_double_claim(manager: VideoJobManager) -> None:
    jobs = await manager.bulk_create_jobs([JOB] * 40)
    claimed: dict[str, list] = {}

    async def worker(name: str) -> None:
        claimed[name] = []
        while sum(len(v) for v in claimed.values()) < len(jobs):
            got = await manager.claim_jobs(name, limit=3)
            claimed[name] += [(a.job_id, a.attempt) for a in got]
            if not got:  # the projection lags our own starts: wait until it has them (read-your-writes)
                await manager.get_job_stats()

    await asyncio.wait_for(asyncio.gather(*(worker(f"w{i}") for i in range(4))), 60)
    all_claims = [job_id for claims in claimed.values() for job_id, _ in claims]
    assert len(all_claims) == len(set(all_claims)) == 40
    assert all(attempt == 1 for claims in claimed.values() for _, attempt in claims)
    history = await manager.audit.find_events(type="start", limit=1000)
    assert len(history.items) == 40


async def test_claim_respects_platform(manager: VideoJobManager) -> None:
    await manager.create_job(**JOB)
    insta = await manager.create_job(**{**JOB, "platform_target": "instagram"})
    got = await manager.claim_jobs("w", limit=5, platform_target="instagram")
    assert [a.job_id for a in got] == [insta.job_id] and got[0].job.status == "processing"
    with pytest.raises(ValidationError) as info:
        await manager.claim_jobs("w", platform_target="myspace")
    assert info.value.field == "platform_target"


async def test_late_complete_after_time_out_is_refused(manager_with_listeners: VideoJobManager) -> None:
    job = await manager_with_listeners.create_job(**JOB)
    slow = await manager_with_listeners.start_processing(job.job_id, "slow-worker")
    reset = await manager_with_listeners.maintenance.reset_stuck_jobs(older_than=0)
    assert reset.reset == 1
    assert (await manager_with_listeners.get_job_by_id(job.job_id)).status == "queued"
    fast = await manager_with_listeners.start_processing(job.job_id, "fast-worker")
    with pytest.raises(StaleAttempt):
        await manager_with_listeners.complete_job(job.job_id, ["/late.mp4"], attempt=slow.attempt)
    with pytest.raises(StaleAttempt):
        await manager_with_listeners.report_progress(job.job_id, slow.attempt, percent=50)
    done = await manager_with_listeners.complete_job(job.job_id, ["/ok.mp4"], attempt=fast.attempt)
    assert done.status == "completed" and done.output_paths == ["/ok.mp4"]


async def test_bulk_update_with_good_and_bad_ids_reports_each(manager: VideoJobManager) -> None:
    queued = await manager.create_job(**JOB)
    done = await manager.create_job(**JOB)
    await manager.start_processing(done.job_id)
    await manager.complete_job(done.job_id, ["/x.mp4"])
    missing, malformed = uuid.uuid4(), "not-a-uuid"
    results = await manager.bulk_update_status([queued.job_id, done.job_id, missing, malformed], "cancelled")
    outcome = {r.job_id: (r.ok, r.error_type) for r in results}
    assert outcome == {str(queued.job_id): (True, None), str(done.job_id): (False, "InvalidTransition"),
                       str(missing): (False, "JobNotFound"), malformed: (False, "ValidationError")}
    assert results[0].job.status == "cancelled"
    deleted = await manager.bulk_delete_jobs([queued.job_id, missing])
    assert [(r.ok, r.error_type) for r in deleted] == [(True, None), (False, "JobNotFound")]


async def test_bulk_create_validates_everything_before_writing(manager: VideoJobManager, pool) -> None:
    with pytest.raises(ValidationError) as info:
        await manager.bulk_create_jobs([JOB, {**JOB, "clip_count": 99}])
    assert info.value.field == "jobs.1.clip_count"
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == 0


async def test_update_job_status_maps_onto_the_machine(manager: VideoJobManager) -> None:
    job = await manager.create_job(**JOB)
    assert (await manager.update_job_status(job.job_id, "processing", worker_id="w9")).worker_id == "w9"
    failed = await manager.update_job_status(job.job_id, "failed", error_message="codec missing")
    assert failed.status == "failed" and failed.error_message == "codec missing"
    assert (await manager.update_job_status(job.job_id, "queued")).status == "queued"
    with pytest.raises(InvalidTransition):
        await manager.update_job_status(job.job_id, "completed", output_paths=["/a.mp4"])
    with pytest.raises(ValidationError) as info:
        await manager.update_job_status(job.job_id, "exploded")
    assert info.value.field == "status"
    with pytest.raises(ValidationError) as info:
        await manager.update_job_status(job.job_id, "cancelled", output_paths=["/a.mp4"])
    assert info.value.field == "output_paths"


async def test_metadata_update_with_expected_version(manager: VideoJobManager) -> None:
    job = await manager.create_job(**JOB)
    changed = await manager.update_job_metadata(job.job_id, clip_count=7, expected_version=job.version)
    assert (changed.clip_count, changed.version) == (7, 2)
    with pytest.raises(ConcurrencyConflict):
        await manager.update_job_metadata(job.job_id, clip_count=8, expected_version=job.version)
    with pytest.raises(ValidationError) as info:
        await manager.update_job_metadata(job.job_id, owner="mallory")
    assert info.value.field == "owner"


async def test_history_shows_every_transition_with_its_actor(manager: VideoJobManager) -> None:
    job = await manager.as_user("u1").create_job(**JOB)
    attempt = await manager.start_processing(job.job_id, "worker-7")
    await manager.report_progress(job.job_id, attempt.attempt, percent=40, clips_done=1, actor="worker-7")
    await manager.complete_job(job.job_id, ["/a.mp4"], attempt=attempt.attempt, actor="worker-7")
    await manager.update_job_metadata(job.job_id, clip_count=3)  # the service, no actor given: its name
    history = await manager.get_job_history(job.job_id)
    assert [(e.type, e.from_state, e.to_state, e.actor) for e in history] == [
        ("create", None, "queued", "u1"), ("start", "queued", "processing", "worker-7"),
        ("progress", "processing", "processing", "worker-7"), ("complete", "processing", "completed", "worker-7"),
        ("update_metadata", "completed", "completed", manager.service)]
    assert manager.service == "vjm"
    assert all(e.occurred_at <= datetime.now(UTC) for e in history)
    by_actor = await manager.audit.find_events(actor="worker-7")
    assert [e.type for e in by_actor.items] == ["start", "progress", "complete"]


async def test_as_of_returns_past_states(manager: VideoJobManager) -> None:
    job = await manager.create_job(**JOB)
    started = await manager.start_processing(job.job_id)
    done = await manager.complete_job(job.job_id, ["/a.mp4"], 30)
    history = await manager.get_job_history(job.job_id)
    assert (await manager.audit.job_as_of(job.job_id, history[0].occurred_at)).status == "queued"
    assert (await manager.audit.job_as_of(job.job_id, history[1].occurred_at)).status == "processing"
    assert (await manager.audit.job_as_of(job.job_id, datetime.now(UTC))) == done
    with pytest.raises(JobNotFound):
        await manager.audit.job_as_of(job.job_id, datetime(2000, 1, 1, tzinfo=UTC))
    assert started.job.started_at == history[1].occurred_at


async def test_verify_history_detects_an_event_a_superuser_edited(manager: VideoJobManager, pool) -> None:
    job = await manager.create_job(**JOB)
    await manager.start_processing(job.job_id)
    await manager.fail_job(job.job_id, "Invalid video format")
    assert (await manager.audit.verify_history()).ok
    async with pool.acquire() as conn:  # a superuser bypasses the append-only trigger on purpose
        await conn.execute("ALTER TABLE vjm.job_events DISABLE TRIGGER job_events_append_only")
        await conn.execute("UPDATE vjm.job_events SET data = '{\"error\": \"all good\"}' "
                           "WHERE job_id = $1 AND type = 'fail'", job.job_id)
        await conn.execute("ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only")
    report = await manager.audit.verify_history()
    assert not report.ok and report.first_broken_job_id == job.job_id and report.first_broken_version == 3
    assert report.reason == "content does not match its hash" and report.checked == 3


async def test_a_read_after_a_write_sees_it(manager_with_listeners: VideoJobManager) -> None:
    for _ in range(5):
        job = await manager_with_listeners.create_job(**JOB)
        attempt = await manager_with_listeners.start_processing(job.job_id)
        await manager_with_listeners.complete_job(job.job_id, ["/a.mp4"], attempt=attempt.attempt)
        page = await manager_with_listeners.get_user_jobs("u1", limit=1)
        assert page.items[0].job_id == job.job_id and page.items[0].status == "completed"


@pytest.mark.parametrize(("call", "field"), [
    (lambda m: m.get_job_by_id("not-a-uuid"), "job_id"),
    (lambda m: m.get_job_by_id("' OR '1'='1"), "job_id"),
    (lambda m: m.create_job(**{**JOB, "original_filename": "a\u0000b.mp4"}), "original_filename"),
    (lambda m: m.create_job(**{**JOB, "original_filename": "x" * 10_000}), "original_filename"),
    (lambda m: m.create_job(**{**JOB, "original_filesize": -5}), "original_filesize"),
    (lambda m: m.create_job(**{**JOB, "clip_count": "five"}), "clip_count"),
    (lambda m: m.create_job(**{**JOB, "platform_target": "TIKTOK'; DROP TABLE vjm.jobs; --"}), "platform_target"),
    (lambda m: m.create_job(**{**JOB, "team_id": "team-one"}), "team_id"),
    (lambda m: m.report_progress(uuid.uuid4(), attempt=True, percent=5), "attempt"),
    (lambda m: m.complete_job(uuid.uuid4(), ["/a"] * 1000), "output_paths"),
    (lambda m: m.fail_job(uuid.uuid4(), "e" * 100_000), "error"),
    (lambda m: m.audit.find_events(type="explode"), "type"),
    (lambda m: m.audit.find_events(since=datetime(2024, 2, 1), until=datetime(2024, 1, 1)), "until"),
    (lambda m: m.get_job_stats(user_id="a", team_id=uuid.uuid4()), "team_id"),
    (lambda m: m.claim_jobs("", limit=1), "worker_id"),
    (lambda m: m.as_user(""), "user_id"),
])
async def test_hostile_input_is_refused_with_nothing_written(manager: VideoJobManager, pool, call, field) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    with pytest.raises(ValidationError) as info:
        await call(manager)
    assert info.value.field == field
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_database_errors_never_leak_as_driver_errors(manager: VideoJobManager) -> None:
    with pytest.raises(JobNotFound):
        await manager.start_processing(uuid.uuid4())
    with pytest.raises(JobNotFound):
        await manager.get_job_history(uuid.uuid4())
    assert not issubclass(JobNotFound, asyncpg.PostgresError)
