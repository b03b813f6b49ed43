"""Bulk create end to end: one statement (vjm.append_create_batch), the same events and jobs as one by one."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from store import EventStore, prepare_event
from tests.support.doorbell import ringing_doorbell
from tests.support.factories import TEST_PRINCIPAL, create_data
from videojobs import ValidationError, VideoJobManager

JOB = create_data(user_id="bulk-user")


async def test_returned_jobs_equal_what_get_job_returns_after_projection(manager: VideoJobManager) -> None:
    team = await manager.teams.create("bulk-team", owner_id="bulk-user")
    jobs = [{**JOB, "original_filename": f"v{i}.mp4"} for i in range(30)]
    jobs[3] = {**jobs[3], "team_id": str(team.team_id), "max_attempts": 7, "platform_target": "youtube_shorts"}
    jobs[4] = {**jobs[4], "team_id": team.team_id}
    made = await manager.bulk_create_jobs(jobs)
    assert [j.original_filename for j in made] == [j["original_filename"] for j in jobs]
    assert made[3].team_id == team.team_id and made[3].max_attempts == made[3].attempts_left == 7
    for job in made:
        stored = await manager.get_job_by_id(job.job_id)
        assert stored == job
        assert stored.model_dump_json() == job.model_dump_json()
    history = await manager.get_job_history(made[0].job_id)
    assert [(e.type, e.version, e.to_state, e.position) for e in history] == [("create", 1, "queued",
                                                                              made[0].last_position)]


async def test_a_bad_job_deep_in_a_big_batch_names_itself_and_writes_nothing(manager: VideoJobManager,
                                                                              pool) -> None:
    jobs = [dict(JOB) for _ in range(10_000)]
    jobs[9_876] = {**JOB, "quality_preset": "8k"}
    with pytest.raises(ValidationError) as info:
        await manager.bulk_create_jobs(jobs)
    assert info.value.field == "jobs.9876.quality_preset"
    assert str(info.value).startswith("jobs[9876]: quality_preset: ")
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == 0
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_queue") == 0


async def test_append_creates_returns_the_events_as_stored(store: EventStore, pool) -> None:
    team = await pool.fetchval("SELECT team_id FROM vjm.create_team('studio', 'u0')")  # ids are issued
    events = [prepare_event("create", create_data(original_filename=f"s{i}.mp4"), user_id=f"u{i % 4}",
                            team_id=team if i % 5 == 0 else None, actor=None if i % 7 == 0 else "svc")
              for i in range(500)]
    stored = await store.append_creates(events)
    # In the order given, each with the id the database issued (the events name none).
    assert [e.data["original_filename"] for e in stored] == [e.data["original_filename"] for e in events]
    assert all(e.job_id is None for e in events) and len({e.job_id for e in stored} - {None}) == 500
    assert len({e.xact_id for e in stored}) == 1 and len({e.position for e in stored}) == 500
    for event in stored[:50] + stored[-50:]:
        assert await store.read_stream(event.job_id) == [event]
    assert {e.actor for e in stored} == {"svc", TEST_PRINCIPAL}  # no actor named: the session's principal
    queued = await pool.fetch("SELECT job_id, created_at, platform_target FROM vjm.job_queue")
    assert {r["job_id"]: (r["created_at"], r["platform_target"]) for r in queued} == {
        e.job_id: (e.occurred_at, e.data["platform_target"]) for e in stored}


async def test_one_doorbell_per_batch(database_url: str, store: EventStore) -> None:
    async with ringing_doorbell(database_url) as doorbells:
        stored = await store.append_creates([prepare_event("create", create_data(), user_id="u") for _ in range(20)])
        assert await doorbells.next() == {"position": max(e.position for e in stored), "count": 20}
        await doorbells.settle()
        assert doorbells.empty()


async def test_the_jsonb_array_form_still_returns_whole_rows(pool) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    rows = await pool.fetch("SELECT * FROM vjm.append_creates($1, $2, $3, $4, $5)", ids,
                            [create_data(), create_data(clip_count=9)], ["a", None], ["u1", "u2"], [None, None])
    assert [r["job_id"] for r in rows] == ids
    stored = await pool.fetch("SELECT * FROM vjm.job_events WHERE job_id = ANY ($1) ORDER BY position", ids)
    assert [dict(r) for r in rows] == [dict(r) for r in stored]
    assert rows[1]["data"]["clip_count"] == 9 and rows[0]["actor"] == "a" and rows[1]["hash"]
    assert await pool.fetch("SELECT * FROM vjm.append_creates('{}', '{}', '{}', '{}', '{}')") == []


async def test_a_null_payload_is_refused_not_stored_as_json_null(pool) -> None:
    with pytest.raises(asyncpg.InvalidParameterValueError, match="data must be a JSON object"):
        await pool.fetch("SELECT * FROM vjm.append_creates($1, ARRAY[$2::jsonb, NULL], $3, $4, $5)",
                         [uuid.uuid4(), uuid.uuid4()], json.dumps(create_data()), [None, None], ["u", "u"],
                         [None, None])
    with pytest.raises(asyncpg.InvalidParameterValueError, match="must have 2 elements"):  # more ids than payloads
        await pool.fetch("SELECT * FROM vjm.append_create_batch($1, $2::jsonb, $3, $4, $5)",
                         [uuid.uuid4(), uuid.uuid4()], [create_data()], [None, None], ["u", "u"],
                         [None, None])
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == 0
