"""Filters and pagination: offset and keyset cursor agree; filters are exact."""

from __future__ import annotations

import random

import pytest

from tests.support.factories import create_data
from videojobs import JobFilters, ValidationError, VideoJobManager

PLATFORMS = ["tiktok", "instagram", "youtube_shorts"]
PRESETS = ["draft", "standard", "pro", "ultra"]


async def _seed(manager: VideoJobManager, n: int, user: str = "lister") -> list:
    rng = random.Random(7)
    jobs = await manager.bulk_create_jobs([
        dict(user_id=user, original_filename=f"v{i}.mp4", original_filesize=i, clip_count=1 + i % 5,
             quality_preset=rng.choice(PRESETS), enhancement_level="basic", platform_target=rng.choice(PLATFORMS))
        for i in range(n)])
    for job in jobs[: n // 3]:
        await manager.start_processing(job.job_id)
    return jobs


async def test_offset_and_cursor_pages_agree(manager_with_listeners: VideoJobManager) -> None:
    await _seed(manager_with_listeners, 47)
    by_offset, offset = [], 0
    while True:
        page = await manager_with_listeners.get_user_jobs("lister", limit=10, offset=offset)
        by_offset += [j.job_id for j in page.items]
        if len(page.items) < 10:
            break
        offset += 10
    by_cursor, cursor = [], None
    while True:
        page = await manager_with_listeners.get_user_jobs("lister", limit=10, cursor=cursor)
        assert page.total == 47
        by_cursor += [j.job_id for j in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert by_offset == by_cursor and len(set(by_cursor)) == 47
    everything = await manager_with_listeners.get_user_jobs("lister", limit=100)
    assert [j.job_id for j in everything.items] == by_cursor
    created = [j.created_at for j in everything.items]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("filters", [
    {"status": "processing"},
    {"status": ["queued", "processing"]},
    {"platform_target": "instagram"},
    {"quality_preset": "ultra", "platform_target": "tiktok"},
    {"status": "queued", "enhancement_level": "basic"},
])
async def test_filters_match_a_python_filter(manager: VideoJobManager, filters: dict) -> None:
    await _seed(manager, 40)
    everything = (await manager.get_user_jobs("lister", limit=100)).items
    parsed = JobFilters.model_validate(filters)
    expected = [j.job_id for j in everything
                if (not parsed.status or j.status in parsed.status)
                and (not parsed.platform_target or j.platform_target == parsed.platform_target)
                and (not parsed.quality_preset or j.quality_preset == parsed.quality_preset)
                and (not parsed.enhancement_level or j.enhancement_level == parsed.enhancement_level)]
    page = await manager.get_user_jobs("lister", limit=100, filters=filters)
    assert [j.job_id for j in page.items] == expected and page.total == len(expected)
    cursor_page = await manager.get_user_jobs("lister", limit=3, filters=filters)
    assert [j.job_id for j in cursor_page.items] == expected[:3]


async def test_date_range_is_inclusive_of_whole_days(manager_with_listeners: VideoJobManager) -> None:
    jobs = await _seed(manager_with_listeners, 3)
    day = jobs[0].created_at.date()
    page = await manager_with_listeners.get_user_jobs("lister", filters={"date_from": day, "date_to": day})
    assert page.total == 3
    exact = await manager_with_listeners.get_user_jobs("lister", filters={"date_from": jobs[1].created_at,
                                                           "date_to": jobs[1].created_at})
    assert [j.job_id for j in exact.items] == [jobs[1].job_id]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "10"}, "limit"), ({"offset": -1}, "offset"),
    ({"filters": {"status": "exploded"}}, "status.0"), ({"filters": {"platform_target": "myspace"}}, "platform_target"),
    ({"filters": {"date_from": "2024-02-01", "date_to": "2024-01-01"}}, "date_to"),
    ({"filters": {"date_from": "yesterday-ish"}}, "date_from"), ({"filters": {"owner": "x"}}, "owner"),
    ({"filters": ["status"]}, "filters"), ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "' OR 1=1 --"}, "cursor"),
])
async def test_bad_list_arguments_are_named(manager: VideoJobManager, kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        await manager.get_user_jobs("lister", **kwargs)
    assert info.value.field == field


async def test_team_jobs_are_listed_by_team(manager_with_listeners: VideoJobManager) -> None:
    team = await manager_with_listeners.teams.create("editors", "owner-1")
    await manager_with_listeners.teams.add_member(team.team_id, "member-2")
    mine = await manager_with_listeners.create_job(user_id="owner-1", team_id=team.team_id, **create_data())
    await manager_with_listeners.create_job(user_id="owner-1", **create_data())
    page = await manager_with_listeners.get_team_jobs(team.team_id)
    assert [j.job_id for j in page.items] == [mine.job_id]
    stats = await manager_with_listeners.get_job_stats(team_id=team.team_id)
    assert stats.total_jobs == 1 and stats.queued_jobs == 1


async def test_a_page_holds_what_validation_would_build(manager_with_listeners: VideoJobManager) -> None:
    """Pages are built from the rows without validation (store.jobs.find_jobs): every field must already
    have the type pydantic would give it, in every state a job can be listed in."""
    m = manager_with_listeners
    done = await m.create_job(user_id="typed", **create_data(), priority=7, idempotency_key="typed-1")
    await m.start_processing(done.job_id, "w1")
    await m.report_progress(done.job_id, 1, percent=40.5, clips_done=2)
    await m.complete_job(done.job_id, ["out/a.mp4", "out/b.mp4"], processing_time=12.25)
    await m.create_job(user_id="typed", **create_data(), run_at="2030-01-01T00:00:00Z")
    await m.create_job(user_id="typed", **create_data())
    page = await m.get_user_jobs("typed", limit=10)
    assert len(page.items) == 3 and any(j.output_paths for j in page.items) and any(j.run_at for j in page.items)
    for job in page.items:
        validated = type(job).model_validate(job.model_dump())
        assert job == validated
        assert {k: type(v) for k, v in job.__dict__.items()} == {k: type(v) for k, v in validated.__dict__.items()}
        assert set(job.__dict__) == set(type(job).model_fields)
