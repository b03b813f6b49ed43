"""The consoles' endpoints: the operator's overview, every job across tenants, bulk retry of a filter's
failed jobs (service tokens only), and the auditor's search, streamed export and chain check (RLS)."""

from __future__ import annotations

import csv
import io
import json

from tests.support.factories import create_data
from tests.support.tokens import SERVICE, bearer


async def _seed(manager) -> dict[str, list[str]]:
    """alice: 2 failed instagram, 1 failed tiktok, 1 queued instagram; bob: 1 failed instagram; carol: 1 completed."""
    made: dict[str, list[str]] = {}
    for user, platform, status in (("alice", "instagram", "failed"), ("alice", "instagram", "failed"),
                                   ("alice", "tiktok", "failed"), ("alice", "instagram", "queued"),
                                   ("bob", "instagram", "failed"), ("carol", "tiktok", "completed")):
        job = await manager.create_job(user_id=user, **create_data(platform_target=platform))
        if status != "queued":
            attempt = await manager.start_processing(job.job_id, "worker-1")
            if status == "failed":
                await manager.fail_job(job.job_id, "codec", attempt.attempt, actor="worker-1")
            else:
                await manager.complete_job(job.job_id, ["/o.mp4"], 1.0, attempt.attempt, actor="worker-1")
        made.setdefault(f"{user}:{platform}:{status}", []).append(str(job.job_id))
    await manager.maintenance.wait_for_projection(10)
    return made


async def test_the_overview_counts_every_job_and_lists_the_queue(client_with_listeners, manager_with_listeners):
    await _seed(manager_with_listeners)
    answer = await client_with_listeners.get("/api/v1/admin/overview", headers=SERVICE)
    assert answer.status_code == 200, answer.text
    overview = answer.json()
    stats = await manager_with_listeners.get_job_stats(days=14)
    assert overview["stats"] == json.loads(stats.model_dump_json())
    assert [(q["platform_target"], q["queued"]) for q in overview["queue"]] == [("instagram", 1)]
    assert overview["oldest_queued_seconds"] >= 0 and overview["stuck"] == []
    assert overview["projector"]["status"] in ("ok", "degraded")
    refused = await client_with_listeners.get("/api/v1/admin/overview", headers=bearer("alice"))
    assert refused.status_code == 403


async def test_every_job_across_tenants_with_a_user_a_team_and_keyset_pages(client_with_listeners,
                                                                           manager_with_listeners):
    made = await _seed(manager_with_listeners)
    everyone = await client_with_listeners.get("/api/v1/admin/jobs", params={"limit": 4}, headers=SERVICE)
    first = everyone.json()
    assert everyone.status_code == 200 and first["total"] == 6 and len(first["items"]) == 4
    rest = await client_with_listeners.get("/api/v1/admin/jobs", params={"limit": 4, "cursor": first["next_cursor"]},
                                           headers=SERVICE)
    ids = [j["job_id"] for j in first["items"] + rest.json()["items"]]
    assert sorted(ids) == sorted(i for group in made.values() for i in group)
    alice_failed = await client_with_listeners.get("/api/v1/admin/jobs", headers=SERVICE,
                                                   params={"user_id": "alice", "status": "failed"})
    assert alice_failed.json()["total"] == 3
    team = await manager_with_listeners.teams.create("editors", "alice")
    nobody = await client_with_listeners.get("/api/v1/admin/jobs", headers=SERVICE,
                                             params={"user_id": "alice", "team_id": str(team.team_id)})
    assert nobody.json()["total"] == 0 and nobody.json()["items"] == []  # both given: both must hold
    bad = await client_with_listeners.get("/api/v1/admin/jobs", params={"user_id": "a\u0007b"}, headers=SERVICE)
    assert bad.status_code == 422
    assert (await client_with_listeners.get("/api/v1/admin/jobs", headers=bearer("alice"))).status_code == 403


async def test_bulk_retry_retries_exactly_the_failed_jobs_of_the_filter(client_with_listeners, manager_with_listeners):
    made = await _seed(manager_with_listeners)
    answer = await client_with_listeners.post("/api/v1/admin/jobs/retry-failed", headers=SERVICE,
                                              json={"platform_target": "instagram", "reason": "codec fixed"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    wanted = set(made["alice:instagram:failed"] + made["bob:instagram:failed"])
    assert {r["job_id"] for r in result["results"]} == wanted
    assert (result["matched"], result["retried"], result["more"]) == (3, 3, False)
    assert all(r["job"]["status"] == "queued" for r in result["results"])
    assert (await manager_with_listeners.get_job_by_id(made["alice:tiktok:failed"][0])).status == "failed"
    history = await manager_with_listeners.get_job_history(made["bob:instagram:failed"][0])
    assert (history[-1].type, history[-1].data.get("reason")) == ("retry", "codec fixed")
    again = await client_with_listeners.post("/api/v1/admin/jobs/retry-failed", headers=SERVICE,
                                             json={"platform_target": "instagram"})
    assert again.json()["matched"] == 0  # none of them is failed any more
    one = await client_with_listeners.post("/api/v1/admin/jobs/retry-failed", headers=SERVICE, json={"user_id": "alice"})
    assert [r["job_id"] for r in one.json()["results"]] == made["alice:tiktok:failed"]
    backwards = await client_with_listeners.post("/api/v1/admin/jobs/retry-failed", headers=SERVICE, json={
        "date_from": "2026-01-02T00:00:00Z", "date_to": "2026-01-01T00:00:00Z"})
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "date_to"
    seconds = await client_with_listeners.post("/api/v1/admin/jobs/retry-failed", headers=SERVICE,
                                               json={"date_from": 0.5})
    assert seconds.status_code == 422
    refused = await client_with_listeners.post("/api/v1/admin/jobs/retry-failed", headers=bearer("alice"), json={})
    assert refused.status_code == 403


async def test_audit_search_export_and_verify_follow_rls(client_with_listeners, manager_with_listeners):
    made = await _seed(manager_with_listeners)
    page = await client_with_listeners.get("/api/v1/audit/events", params={"actor": "worker-1", "limit": 3},
                                           headers=SERVICE)
    assert page.status_code == 200, page.text
    expected = await manager_with_listeners.audit.find_events(actor="worker-1", limit=1000)
    assert [e["position"] for e in page.json()["items"]] == [e.position for e in expected.items[:3]]
    assert page.json()["next_cursor"] == expected.items[2].position
    exported = await client_with_listeners.get("/api/v1/audit/events/export", headers=SERVICE,
                                               params={"actor": "worker-1", "format": "jsonl"})
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [e["position"] for e in lines] == [e.position for e in expected.items]
    table = list(csv.DictReader(io.StringIO((await client_with_listeners.get(
        "/api/v1/audit/events/export", headers=SERVICE, params={"actor": "worker-1", "format": "csv"})).text)))
    assert [int(r["position"]) for r in table] == [e.position for e in expected.items]

    bobs = made["bob:instagram:failed"][0]
    alice = await client_with_listeners.get("/api/v1/audit/events", params={"limit": 1000}, headers=bearer("alice"))
    assert alice.status_code == 200 and {e["user_id"] for e in alice.json()["items"]} == {"alice"}
    hidden = await client_with_listeners.get("/api/v1/audit/events", params={"job_id": bobs}, headers=bearer("alice"))
    assert hidden.json()["items"] == []
    verified = await client_with_listeners.get("/api/v1/audit/verify", headers=SERVICE)
    assert verified.json()["ok"] is True and verified.json()["checked"] > 10
    mine = await client_with_listeners.get("/api/v1/audit/verify", headers=bearer("alice"))
    assert mine.json()["ok"] is True and mine.json()["checked"] == len(alice.json()["items"])
    assert (await client_with_listeners.get("/api/v1/audit/verify", params={"job_id": bobs},
                                            headers=bearer("alice"))).status_code == 404
    backwards = await client_with_listeners.get("/api/v1/audit/events/export", headers=SERVICE, params={
        "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
    assert backwards.status_code == 422  # refused before the download starts
    seconds = await client_with_listeners.get("/api/v1/audit/events", params={"until": "0.5"}, headers=SERVICE)
    assert seconds.status_code == 422  # an instant is ISO 8601 text, not a number of seconds
