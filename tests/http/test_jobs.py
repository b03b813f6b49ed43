"""Happy paths of the job endpoints, then their error codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.support.http_app import JOB
from tests.support.tokens import SERVICE, bearer

PROBLEM = "application/problem+json"


async def create(client, sub: str = "alice", **fields) -> dict:
    response = await client.post("/api/v1/process", json={**JOB, **fields}, headers=bearer(sub))
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_returns_201_with_the_job_and_location(client):
    response = await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))
    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "queued" and job["user_id"] == "alice" and job["clip_count"] == 3
    assert response.headers["location"] == f"/api/v1/jobs/{job['job_id']}"
    assert response.headers["content-type"] == "application/json"
    fetched = await client.get(response.headers["location"], headers=bearer("alice"))
    assert fetched.json() == job  # the create answers the Job as its response model, as a read does


async def test_create_takes_a_priority_and_a_run_at_and_shows_them(client):
    job = await create(client, priority=7, run_at="2030-01-02T03:04:05+02:00")
    assert (job["priority"], job["run_at"]) == (7, "2030-01-02T01:04:05Z")
    fetched = await client.get(f"/api/v1/jobs/{job['job_id']}", headers=bearer("alice"))
    assert (fetched.json()["priority"], fetched.json()["run_at"]) == (7, "2030-01-02T01:04:05Z")
    history = await client.get(f"/api/v1/jobs/{job['job_id']}/events", headers=bearer("alice"))
    assert history.json()["events"][0]["data"]["run_at"] == "2030-01-02T01:04:05Z"


async def test_get_patch_metadata_history_and_delete(client):
    job = await create(client)
    url = f"/api/v1/jobs/{job['job_id']}"
    got = await client.get(url, headers=bearer("alice"))
    assert got.status_code == 200 and got.json()["job_id"] == job["job_id"]
    patched = await client.patch(url, json={"clip_count": 7, "expected_version": 1}, headers=bearer("alice"))
    assert patched.status_code == 200 and patched.json()["clip_count"] == 7
    history = await client.get(f"{url}/events", headers=bearer("alice"))
    assert [e["type"] for e in history.json()["events"]] == ["create", "update_metadata"]
    deleted = await client.delete(url, headers=bearer("alice"))
    assert deleted.status_code == 204
    assert (await client.get(url, headers=bearer("alice"))).status_code == 404
    after = await client.get(f"{url}/events", headers=bearer("alice"))
    assert after.json()["events"][-1]["type"] == "delete"


async def test_get_as_of_returns_the_job_at_a_past_instant(client):
    job = await create(client)
    url = f"/api/v1/jobs/{job['job_id']}"
    between = datetime.now(UTC).isoformat()
    await client.patch(url, json={"clip_count": 9}, headers=bearer("alice"))
    then = await client.get(url, params={"as_of": between}, headers=bearer("alice"))
    assert then.status_code == 200 and then.json()["clip_count"] == 3
    assert (await client.get(url, headers=bearer("alice"))).json()["clip_count"] == 9
    before = await client.get(url, params={"as_of": "2000-01-01T00:00:00Z"}, headers=bearer("alice"))
    assert before.status_code == 404


async def test_cancel_then_retry_through_patch(client):
    job = await create(client)
    url = f"/api/v1/jobs/{job['job_id']}"
    cancelled = await client.patch(url, json={"status": "cancelled", "reason": "oops"}, headers=bearer("alice"))
    assert cancelled.json()["status"] == "cancelled"
    retried = await client.patch(url, json={"status": "queued"}, headers=bearer("alice"))
    assert retried.json()["status"] == "queued"


async def test_unknown_job_is_404_problem(client):
    response = await client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=bearer("alice"))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404 and body["type"].endswith("/job-not-found") and body["title"]


async def test_illegal_transition_is_409_with_state_and_allowed_triggers(client):
    job = await create(client)
    url = f"/api/v1/jobs/{job['job_id']}"
    await client.patch(url, json={"status": "cancelled"}, headers=bearer("alice"))
    again = await client.patch(url, json={"status": "cancelled"}, headers=bearer("alice"))
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    body = again.json()
    assert body["current_state"] == "cancelled"
    assert "retry" in body["allowed_triggers"] and "cancel" not in body["allowed_triggers"]


async def test_concurrency_conflict_is_409(client):
    job = await create(client)
    url = f"/api/v1/jobs/{job['job_id']}"
    await client.patch(url, json={"clip_count": 4, "expected_version": 1}, headers=bearer("alice"))
    stale = await client.patch(url, json={"clip_count": 5, "expected_version": 1}, headers=bearer("alice"))
    assert stale.status_code == 409 and stale.json()["type"].endswith("/concurrency-conflict")


async def test_validation_errors_are_422_naming_the_field(client):
    bad = await client.post("/api/v1/process", json={**JOB, "clip_count": 500}, headers=bearer("alice"))
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert [e["field"] for e in bad.json()["errors"]] == ["clip_count"]
    path = await client.post("/api/v1/process", json={**JOB, "original_filename": "../../etc/passwd"},
                             headers=bearer("alice"))
    assert path.status_code == 422 and path.json()["errors"][0]["field"] == "original_filename"
    query = await client.get("/api/v1/user/jobs", params={"limit": 0}, headers=bearer("alice"))
    assert query.status_code == 422 and query.json()["errors"][0]["field"] == "query.limit"
    not_uuid = await client.get("/api/v1/jobs/not-a-uuid", headers=bearer("alice"))
    assert not_uuid.status_code == 422 and not_uuid.json()["errors"][0]["field"] == "path.job_id"
    broken = await client.post("/api/v1/process", content=b"{not json", headers={
        **bearer("alice"), "content-type": "application/json"})
    assert broken.status_code == 422 and broken.headers["content-type"] == PROBLEM
    both = await client.patch(f"/api/v1/jobs/{uuid.uuid4()}", json={"status": "cancelled", "clip_count": 2},
                              headers=bearer("alice"))
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "clip_count"
    unknown = await client.post("/api/v1/process", json={**JOB, "colour": "red"}, headers=bearer("alice"))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "colour"


async def test_forbidden_action_on_a_visible_job_is_403(client):
    job = await create(client)
    start = await client.patch(f"/api/v1/jobs/{job['job_id']}", json={"status": "processing"},
                               headers=bearer("alice"))
    assert start.status_code == 403 and start.headers["content-type"] == PROBLEM
    other = await client.post("/api/v1/process", json={**JOB, "user_id": "bob"}, headers=bearer("alice"))
    assert other.status_code == 403


async def test_unknown_route_and_wrong_method_are_problems(client):
    missing = await client.get("/api/v1/nothing-here", headers=bearer("alice"))
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    wrong = await client.put("/api/v1/process", json=JOB, headers=bearer("alice"))
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM


async def test_service_creates_for_a_named_user_and_must_name_one(client):
    made = await client.post("/api/v1/process", json={**JOB, "user_id": "carol"}, headers=SERVICE)
    assert made.status_code == 201 and made.json()["user_id"] == "carol"
    unnamed = await client.post("/api/v1/process", json=JOB, headers=SERVICE)
    assert unnamed.status_code == 422 and unnamed.json()["errors"][0]["field"] == "user_id"


async def test_reschedule_changes_a_queued_jobs_priority_and_run_at(client):
    job = await create(client)
    moved = await client.post(f"/api/v1/jobs/{job['job_id']}/reschedule",
                              json={"priority": 8, "run_at": "2030-01-02T03:04:05+02:00"}, headers=bearer("alice"))
    assert moved.status_code == 200, moved.text
    assert (moved.json()["priority"], moved.json()["run_at"], moved.json()["version"]) == (8, "2030-01-02T01:04:05Z", 2)
    empty = await client.post(f"/api/v1/jobs/{job['job_id']}/reschedule", json={}, headers=bearer("alice"))
    assert empty.status_code == 422
    other = await client.post(f"/api/v1/jobs/{job['job_id']}/reschedule", json={"priority": 1}, headers=bearer("bob"))
    assert other.status_code == 404
