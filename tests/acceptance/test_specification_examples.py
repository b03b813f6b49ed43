"""Every usage example of the original specification, in Python, each step asserting the exact outcome."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from videojobs import InvalidTransition, JobNotFound, VideoJobManager

SPEC_JOB = dict(user_id="user-123", original_filename="video.mp4", original_filesize=1_024_000, clip_count=5,
                quality_preset="pro", enhancement_level="basic", platform_target="tiktok")


async def test_creating_a_job(manager: VideoJobManager) -> None:
    job = await manager.create_job(**SPEC_JOB)
    assert job.status == "queued"
    assert (job.original_filename, job.original_filesize, job.clip_count) == ("video.mp4", 1_024_000, 5)
    assert (job.quality_preset, job.enhancement_level, job.platform_target) == ("pro", "basic", "tiktok")
    assert job.started_at is None and job.completed_at is None and job.created_at <= datetime.now(UTC)
    assert (await manager.get_job_by_id(job.job_id)) == job


async def test_updating_job_status_start_then_complete_with_120_seconds(manager: VideoJobManager) -> None:
    job = await manager.create_job(**SPEC_JOB)
    attempt = await manager.start_processing(job.job_id)
    assert attempt.attempt == 1 and attempt.job.status == "processing" and attempt.job.started_at is not None
    paths = ["/processed/job1/clip1.mp4", "/processed/job1/clip2.mp4"]
    done = await manager.complete_job(job.job_id, paths, 120)
    assert done.status == "completed" and done.output_paths == paths and done.processing_time == 120
    assert done.completed_at is not None and done.completed_at >= done.started_at
    assert (await manager.get_job_by_id(job.job_id)).status == "completed"


async def test_marking_a_job_failed(manager: VideoJobManager) -> None:
    job = await manager.create_job(**SPEC_JOB)
    await manager.start_processing(job.job_id)
    failed = await manager.fail_job(job.job_id, "Invalid video format")
    assert failed.status == "failed" and failed.error_message == "Invalid video format"
    assert failed.completed_at is not None and failed.processing_time is not None
    with pytest.raises(InvalidTransition) as info:
        await manager.complete_job(job.job_id, ["/late.mp4"])
    assert info.value.state == "failed"


async def test_retrieving_jobs_with_filters(manager_with_listeners: VideoJobManager) -> None:
    done = await manager_with_listeners.create_job(**SPEC_JOB)
    await manager_with_listeners.start_processing(done.job_id)
    await manager_with_listeners.complete_job(done.job_id, ["/c.mp4"], 10)
    await manager_with_listeners.create_job(**SPEC_JOB)                                       # queued: filtered out
    other = await manager_with_listeners.create_job(**{**SPEC_JOB, "platform_target": "instagram"})
    await manager_with_listeners.start_processing(other.job_id)
    await manager_with_listeners.complete_job(other.job_id, ["/i.mp4"], 10)                   # instagram: filtered out
    await manager_with_listeners.create_job(**{**SPEC_JOB, "user_id": "user-456"})           # another user
    today = date.today()
    page = await manager_with_listeners.get_user_jobs("user-123", 50, 0, {
        "status": "completed", "platform_target": "tiktok",
        "date_from": date(today.year, 1, 1).isoformat(), "date_to": date(today.year, 12, 31).isoformat()})
    assert [j.job_id for j in page.items] == [done.job_id] and page.total == 1
    last_year = await manager_with_listeners.get_user_jobs("user-123", 50, 0, {"date_from": "2023-01-01", "date_to": "2023-12-31"})
    assert last_year.items == [] and last_year.total == 0


async def test_getting_statistics(manager_with_listeners: VideoJobManager) -> None:
    durations = [120.0, 60.0]
    for seconds in durations:
        job = await manager_with_listeners.create_job(**SPEC_JOB)
        await manager_with_listeners.start_processing(job.job_id)
        await manager_with_listeners.complete_job(job.job_id, ["/c.mp4"], seconds)
    failed = await manager_with_listeners.create_job(**SPEC_JOB)
    await manager_with_listeners.start_processing(failed.job_id)
    await manager_with_listeners.fail_job(failed.job_id, "Invalid video format")
    await manager_with_listeners.create_job(**SPEC_JOB)
    processing = await manager_with_listeners.create_job(**SPEC_JOB)
    await manager_with_listeners.start_processing(processing.job_id)
    stats = await manager_with_listeners.get_job_stats("user-123")
    assert (stats.total_jobs, stats.queued_jobs, stats.processing_jobs) == (5, 1, 1)
    assert (stats.completed_jobs, stats.failed_jobs, stats.cancelled_jobs) == (2, 1, 0)
    failed_seconds = (await manager_with_listeners.get_job_by_id(failed.job_id)).processing_time
    assert stats.total_processing_time == pytest.approx(sum(durations) + failed_seconds, abs=0.002)
    assert stats.average_processing_time == pytest.approx(stats.total_processing_time / 3, abs=0.002)
    tiktok = {p.platform_target: p for p in stats.by_platform}["tiktok"]
    assert (tiktok.total_jobs, tiktok.completed_jobs) == (5, 2)
    assert sum(d.completed_jobs for d in stats.daily) == 2


async def test_deleting_a_job_keeps_its_history(manager: VideoJobManager) -> None:
    job = await manager.create_job(**SPEC_JOB)
    await manager.delete_job(job.job_id)
    with pytest.raises(JobNotFound):
        await manager.get_job_by_id(job.job_id)
    assert [e.type for e in await manager.get_job_history(job.job_id)] == ["create", "delete"]
