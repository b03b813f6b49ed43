"""Who acted, for every way in: the stored actor is the person, worker or named service that acted,
never the database login (issue 16, item 1).

Ways in: the Python manager (a trusted service), `as_user`, HTTP as an end user, HTTP as a
processor (single reports and the batch complete), the CLI, and raw SQL as vjm_processor.
"""

from __future__ import annotations

import getpass
from uuid import UUID

import asyncpg
import httpx
import pytest

from statemachine import ValidationError
from store.identity import create_role_pool
from tests.support.cli import avjm, environment_without
from tests.support.factories import create_data
from tests.support.http_app import http_settings
from tests.support.tokens import bearer, service_bearer
from videojobs import Settings, VideoJobManager, connect
from videojobs.http import create_app

LOGINS = {"postgres", "vjm_app", "vjm_worker", "vjm_listener", "vjm_admin", "vjm_processor", "vjm_owner"}
JOB = create_data()


async def actors(pool_or_url, job_id: UUID) -> list[tuple[str, str]]:
    """(type, actor) of a job's events, oldest first, read as the owner."""
    conn = await asyncpg.connect(pool_or_url) if isinstance(pool_or_url, str) else None
    try:
        rows = await (conn or pool_or_url).fetch(
            "SELECT type, actor FROM vjm.job_events WHERE job_id = $1 ORDER BY version", job_id)
    finally:
        if conn is not None:
            await conn.close()
    return [(r["type"], r["actor"]) for r in rows]


async def test_the_python_manager_records_its_service_name_and_each_attempt_its_worker(database_url: str) -> None:
    async with connect(settings=Settings(database_url=database_url, service_name="uploads-api")) as manager:
        job = await manager.create_job(user_id="user-123", **JOB)
        attempt = await manager.start_processing(job.job_id, worker_id="worker-7")
        await manager.report_progress(job.job_id, attempt.attempt, 50.0)
        await manager.complete_job(job.job_id, ["/out/1.mp4"], 1.5, attempt=attempt.attempt)
        other = await manager.create_job(user_id="user-123", **JOB)
        await manager.cancel_job(other.job_id, "not needed")
        billing = manager.as_service("billing")
        await billing.retry_job(other.job_id)
        assert await actors(database_url, job.job_id) == [
            ("create", "uploads-api"), ("start", "worker-7"), ("progress", "worker-7"), ("complete", "worker-7")]
        assert await actors(database_url, other.job_id) == [
            ("create", "uploads-api"), ("cancel", "uploads-api"), ("retry", "billing")]
        # The batch APIs follow the same rule.
        created = await manager.bulk_create_jobs([{**JOB, "user_id": "user-9"}])
        [claimed] = await manager.claim_jobs("worker-8", 1)
        assert claimed.job_id == other.job_id
        [done] = await manager.complete_jobs([{"job_id": claimed.job_id, "attempt": claimed.attempt}])
        assert done.ok, done.error
        await manager.bulk_update_status([created[0].job_id], "cancelled")
        assert await actors(database_url, created[0].job_id) == [("create", "uploads-api"), ("cancel", "uploads-api")]
        assert (await actors(database_url, other.job_id))[-2:] == [("start", "worker-8"), ("complete", "worker-8")]


async def test_an_end_user_is_recorded_as_themselves(manager: VideoJobManager, database_url: str) -> None:
    alice = manager.as_user("alice")
    job = await alice.create_job(user_id="alice", **JOB)
    await alice.cancel_job(job.job_id)
    [created] = await alice.bulk_create_jobs([{**JOB, "user_id": "alice"}])
    assert await actors(database_url, job.job_id) == [("create", "alice"), ("cancel", "alice")]
    assert await actors(database_url, created.job_id) == [("create", "alice")]


async def test_http_users_and_processors_are_recorded_as_who_called(manager: VideoJobManager,
                                                                    database_url: str) -> None:
    app = create_app(manager, settings=http_settings(database_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test") as client:
        fleet = service_bearer("render-fleet")
        made = await client.post("/api/v1/process", json=JOB, headers=bearer("bob"))
        assert made.status_code == 201, made.text
        first = UUID(made.json()["job_id"])
        second = UUID((await client.post("/api/v1/process", json=JOB, headers=bearer("bob"))).json()["job_id"])
        claim = await client.post("/api/v1/processor/jobs/claim", json={"worker_id": "worker-7", "limit": 2},
                                  headers=fleet)
        assert claim.status_code == 200, claim.text
        attempts = {UUID(a["job_id"]): a["attempt"] for a in claim.json()["attempts"]}
        assert set(attempts) == {first, second}
        # A report without a worker_id is the attempt's worker's; one naming a worker_id is that worker's.
        r = await client.post(f"/api/v1/processor/jobs/{first}/progress", json={"attempt": attempts[first],
                                                                                "percent": 10}, headers=fleet)
        assert r.status_code == 200, r.text
        r = await client.post(f"/api/v1/processor/jobs/{first}/progress",
                              json={"attempt": attempts[first], "percent": 20, "worker_id": "worker-7b"},
                              headers=fleet)
        assert r.status_code == 200, r.text
        r = await client.post(f"/api/v1/processor/jobs/{first}/fail",
                              json={"attempt": attempts[first], "error": "codec"}, headers=fleet)
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/processor/jobs/complete",
                              json={"completions": [{"job_id": str(second), "attempt": attempts[second],
                                                     "output_paths": ["/o.mp4"]}]}, headers=fleet)
        assert r.status_code == 200 and r.json()["applied"] == 1, r.text
        # An admin action by a service token is that service's.
        r = await client.post("/api/v1/admin/jobs/maintenance",
                              json={"action": "bulk_update", "job_ids": [str(first)], "status": "queued"},
                              headers=service_bearer("ops-console"))
        assert r.status_code == 200 and r.json()["ok"], r.text
    assert await actors(database_url, first) == [
        ("create", "bob"), ("start", "worker-7"), ("progress", "worker-7"), ("progress", "worker-7b"),
        ("fail", "worker-7"), ("retry", "ops-console")]
    assert await actors(database_url, second) == [("create", "bob"), ("start", "worker-7"), ("complete", "worker-7")]


async def test_the_cli_records_its_operator_or_the_service_it_is_told_to_be(manager: VideoJobManager,
                                                                           database_url: str) -> None:
    jobs = [await manager.create_job(user_id="alice", **JOB) for _ in range(3)]
    env = environment_without("VJM_SERVICE_NAME")
    done = await avjm("jobs", "cancel", str(jobs[0].job_id), "--database-url", database_url, env=env)
    assert done.returncode == 0, done.stderr
    done = await avjm("jobs", "cancel", str(jobs[1].job_id), "--database-url", database_url,
               env={**env, "VJM_SERVICE_NAME": "nightly-cleanup"})
    assert done.returncode == 0, done.stderr
    done = await avjm("jobs", "cancel", str(jobs[2].job_id), "--as", "alice", "--database-url", database_url, env=env)
    assert done.returncode == 0, done.stderr
    assert (await actors(database_url, jobs[0].job_id))[-1] == ("cancel", f"cli:{getpass.getuser()}")
    assert (await actors(database_url, jobs[1].job_id))[-1] == ("cancel", "nightly-cleanup")
    assert (await actors(database_url, jobs[2].job_id))[-1] == ("cancel", "alice")


async def test_raw_sql_as_a_processor_records_the_worker_or_the_named_principal(pool, database_url: str) -> None:
    job_id = await pool.fetchval("SELECT (vjm.append_event(NULL, 'create', $1::jsonb, 'uploader', NULL, NULL,"
                                 " 'user-1')).job_id", create_data())
    processor = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=1)
    try:
        async with processor.acquire() as conn:
            await conn.execute("SET vjm.principal = ''")  # this session names no service
            start = await conn.fetchrow("SELECT * FROM vjm.claim_jobs('worker-9', 1)")
            assert start["job_id"] == job_id and start["actor"] == "worker-9"
            progress = await conn.fetchrow(
                "SELECT * FROM vjm.append_event($1, 'progress', '{\"percent\": 5}', NULL, NULL, $2)",
                job_id, start["attempt"])
            assert progress["actor"] == "worker-9"  # the attempt's worker, not the login
            with pytest.raises(asyncpg.InvalidParameterValueError, match="who does this time_out"):
                await conn.execute("SELECT 1 FROM vjm.append_event($1, 'time_out', '{}', NULL, NULL, $2)",
                                   job_id, start["attempt"])
            await conn.execute("SET vjm.principal = 'reaper'")
            await conn.execute("SELECT 1 FROM vjm.append_event($1, 'time_out', '{}', NULL, NULL, $2)",
                               job_id, start["attempt"])
    finally:
        await processor.close()
    assert await actors(pool, job_id) == [("create", "uploader"), ("start", "worker-9"), ("progress", "worker-9"),
                                          ("time_out", "reaper")]


async def test_a_trusted_store_write_without_anyone_to_record_is_refused_and_writes_nothing(pool) -> None:
    from store import EventStore, prepare_event

    async with pool.acquire() as conn:
        await conn.execute("SET vjm.principal = ''")
        with pytest.raises(ValidationError, match="who does this create"):
            await EventStore(conn).append(prepare_event("create", create_data(), user_id="u1"))
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == 0


async def test_no_event_anywhere_names_a_database_login(manager: VideoJobManager, database_url: str) -> None:
    """Everything the manager, its batch calls and its listeners write names someone, not a login."""
    job = await manager.create_job(user_id="u", **JOB)
    attempt = await manager.start_processing(job.job_id)
    await manager.report_progress(job.job_id, attempt.attempt, 1.0)
    await manager.fail_job(job.job_id, "boom", attempt=attempt.attempt)
    await manager.as_user("u").retry_job(job.job_id)
    rows = await actors(database_url, job.job_id)
    assert len(rows) == 5 and not {actor for _, actor in rows} & LOGINS, rows
