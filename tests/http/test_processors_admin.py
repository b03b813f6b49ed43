"""Processor endpoints (claim, progress, complete, fail with the attempt token) and admin maintenance."""

from __future__ import annotations

import uuid

from tests.support.http_app import JOB
from tests.support.tokens import SERVICE, bearer


async def _queued(client, n: int = 1, sub: str = "alice") -> list[str]:
    ids = []
    for _ in range(n):
        r = await client.post("/api/v1/process", json=JOB, headers=bearer(sub))
        ids.append(r.json()["job_id"])
    return ids


async def test_claim_progress_complete(client):
    [job_id] = await _queued(client)
    claimed = await client.post("/api/v1/processor/jobs/claim", json={"worker_id": "w1", "limit": 5},
                                headers=SERVICE)
    assert claimed.status_code == 200
    [attempt] = claimed.json()["attempts"]
    assert attempt["job_id"] == job_id and attempt["attempt"] == 1 and attempt["job"]["status"] == "processing"
    base = f"/api/v1/processor/jobs/{job_id}"
    progressed = await client.post(f"{base}/progress", json={"attempt": 1, "percent": 50, "clips_done": 1},
                                   headers=SERVICE)
    assert progressed.status_code == 200 and progressed.json()["progress_percent"] == 50
    done = await client.post(f"{base}/complete", json={"attempt": 1, "output_paths": ["/o/1.mp4"],
                                                       "processing_time": 3.5}, headers=SERVICE)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    again = await client.post(f"{base}/complete", json={"attempt": 1, "output_paths": ["/o/1.mp4"]},
                              headers=SERVICE)
    assert again.status_code == 409 and again.json()["current_state"] == "completed"
    nothing = await client.post("/api/v1/processor/jobs/claim", json={"worker_id": "w1"}, headers=SERVICE)
    assert nothing.json() == {"attempts": []}
    history = await client.get(f"/api/v1/jobs/{job_id}/events", headers=bearer("alice"))
    # The service token (sub worker-1) named no worker in its reports: they are the attempt's worker's.
    assert [e["actor"] for e in history.json()["events"]][1:] == ["w1", "w1", "w1"]


async def test_fail_then_late_complete_of_a_reset_attempt_is_409(client_with_listeners):
    [job_id, other] = await _queued(client_with_listeners, 2)
    await client_with_listeners.post("/api/v1/processor/jobs/claim", json={"worker_id": "w1", "limit": 2}, headers=SERVICE)
    failed = await client_with_listeners.post(f"/api/v1/processor/jobs/{other}/fail", json={"attempt": 1, "error": "boom"},
                               headers=SERVICE)
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert failed.json()["error_message"] == "boom"
    reset = await client_with_listeners.post("/api/v1/admin/jobs/maintenance", json={"action": "reset_stuck",
                                                                      "older_than_seconds": 0}, headers=SERVICE)
    assert reset.json()["result"]["requeued"] == 1
    claimed = await client_with_listeners.post("/api/v1/processor/jobs/claim", json={"worker_id": "w2"}, headers=SERVICE)
    assert claimed.json()["attempts"][0]["attempt"] == 2
    stale = await client_with_listeners.post(f"/api/v1/processor/jobs/{job_id}/complete",
                              json={"attempt": 1, "output_paths": ["/o.mp4"]}, headers=SERVICE)
    assert stale.status_code == 409 and stale.json()["type"].endswith("/stale-attempt")
    assert stale.json()["current_state"] == "processing"


async def test_end_users_may_not_use_processor_or_admin_endpoints(client):
    [job_id] = await _queued(client)
    calls = [("/api/v1/processor/jobs/claim", {"worker_id": "w"}),
             (f"/api/v1/processor/jobs/{job_id}/progress", {"attempt": 1}),
             (f"/api/v1/processor/jobs/{job_id}/complete", {"attempt": 1, "output_paths": []}),
             (f"/api/v1/processor/jobs/{job_id}/fail", {"attempt": 1, "error": "x"}),
             ("/api/v1/admin/jobs/maintenance", {"action": "verify_projections"})]
    for path, body in calls:
        response = await client.post(path, json=body, headers=bearer("alice"))
        assert response.status_code == 403, path


async def test_unknown_job_for_processor_is_404(client):
    r = await client.post(f"/api/v1/processor/jobs/{uuid.uuid4()}/progress", json={"attempt": 1},
                          headers=SERVICE)
    assert r.status_code == 404


async def test_maintenance_actions(client_with_listeners):
    ids = await _queued(client_with_listeners, 2)
    await client_with_listeners.post("/api/v1/processor/jobs/claim", json={"worker_id": "w1", "limit": 1}, headers=SERVICE)

    async def run(body):
        r = await client_with_listeners.post("/api/v1/admin/jobs/maintenance", json=body, headers=SERVICE)
        assert r.status_code == 200, r.text
        return r.json()

    reset = await run({"action": "reset_stuck", "older_than_seconds": 0})
    assert reset["result"]["reset"] == 1
    bulk = await run({"action": "bulk_update", "job_ids": ids + [str(uuid.uuid4())], "status": "cancelled"})
    assert bulk["ok"] is False and bulk["result"]["applied"] == 2
    assert bulk["result"]["results"][2]["error_type"] == "JobNotFound"
    assert (await run({"action": "verify_projections"}))["ok"] is True
    rebuilt = await run({"action": "rebuild_projections"})
    assert rebuilt["result"]["jobs"] == 2
    history = await run({"action": "verify_history"})
    assert history["ok"] is True and history["result"]["checked"] >= 4
    one = await run({"action": "verify_history", "job_id": ids[0]})
    assert one["ok"] is True
    bad = await client_with_listeners.post("/api/v1/admin/jobs/maintenance", json={"action": "explode"}, headers=SERVICE)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "action"


async def test_complete_a_claimed_batch_in_one_request(client):
    await _queued(client, 3)
    claimed = await client.post("/api/v1/processor/jobs/claim", json={"worker_id": "w2", "limit": 3},
                                headers=SERVICE)
    attempts = claimed.json()["attempts"]
    first = attempts[0]
    await client.post(f"/api/v1/processor/jobs/{first['job_id']}/complete",
                      json={"attempt": 1, "output_paths": ["/o/early.mp4"]}, headers=SERVICE)
    body = {"worker_id": "w2", "completions": [
        {"job_id": a["job_id"], "attempt": a["attempt"], "output_paths": [f"/o/{i}.mp4"], "processing_time": 2.0}
        for i, a in enumerate(attempts)]}
    done = await client.post("/api/v1/processor/jobs/complete", json=body, headers=SERVICE)
    assert done.status_code == 200
    payload = done.json()
    assert payload["applied"] == 2
    assert [(r["ok"], r["error_type"]) for r in payload["results"]] == [
        (False, "InvalidTransition"), (True, None), (True, None)]
    assert all(r["job"]["status"] == "completed" for r in payload["results"][1:])
    assert payload["results"][2]["job"]["output_paths"] == ["/o/2.mp4"]
    history = await client.get(f"/api/v1/jobs/{attempts[1]['job_id']}/events", headers=bearer("alice"))
    assert history.json()["events"][-1]["actor"] == "w2"


async def test_batch_complete_refuses_bad_input_and_end_users(client):
    url = "/api/v1/processor/jobs/complete"
    one = {"job_id": str(uuid.uuid4()), "attempt": 1, "output_paths": []}
    assert (await client.post(url, json={"completions": []}, headers=SERVICE)).status_code == 422
    assert (await client.post(url, json={"completions": [{**one, "attempt": 0}]}, headers=SERVICE)).status_code == 422
    assert (await client.post(url, json={"completions": [{**one, "colour": "red"}]},
                              headers=SERVICE)).status_code == 422
    assert (await client.post(url, json={"completions": [one]}, headers=bearer("alice"))).status_code == 403
    unknown = await client.post(url, json={"completions": [one]}, headers=SERVICE)
    assert unknown.status_code == 200 and unknown.json()["results"][0]["error_type"] == "JobNotFound"
