"""Lists, filters, paging, stats, and the tenant matrix over HTTP (A and B share a team, C is alone)."""

from __future__ import annotations

import pytest

from tests.support.http_app import JOB
from tests.support.tokens import SERVICE, bearer


async def make_tenants(manager, client) -> dict:
    """A and B share team T; C is alone. Each creates jobs; A also one in T."""
    team = await manager.teams.create("studio", owner_id="user-a")
    await manager.teams.add_member(team.team_id, "user-b")
    made = {}
    for sub, extra in (("user-a", {}), ("user-a", {"team_id": str(team.team_id)}), ("user-b", {}),
                       ("user-c", {})):
        r = await client.post("/api/v1/process", json={**JOB, **extra}, headers=bearer(sub))
        assert r.status_code == 201, r.text
        made.setdefault(sub, []).append(r.json()["job_id"])
    return {"team": str(team.team_id), "jobs": made, "team_job": made["user-a"][1]}


@pytest.fixture
async def tenants(manager, client):
    """The tenants (make_tenants), through the plain client."""
    return await make_tenants(manager, client)


@pytest.fixture
async def tenants_with_listeners(manager_with_listeners, client_with_listeners):
    """The tenants (make_tenants), through the client whose manager runs the projector."""
    return await make_tenants(manager_with_listeners, client_with_listeners)


async def test_user_jobs_filters_and_paging(client_with_listeners):
    for platform in ("tiktok", "instagram", "tiktok"):
        await client_with_listeners.post("/api/v1/process", json={**JOB, "platform_target": platform}, headers=bearer("dana"))
    page = await client_with_listeners.get("/api/v1/user/jobs", params={"platform_target": "tiktok", "status": ["queued"]},
                            headers=bearer("dana"))
    assert page.status_code == 200 and page.json()["total"] == 2
    first = (await client_with_listeners.get("/api/v1/user/jobs", params={"limit": 2}, headers=bearer("dana"))).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await client_with_listeners.get("/api/v1/user/jobs", params={"limit": 2, "cursor": first["next_cursor"]},
                               headers=bearer("dana"))).json()
    ids = [j["job_id"] for j in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 3
    by_offset = (await client_with_listeners.get("/api/v1/user/jobs", params={"limit": 2, "offset": 2},
                                  headers=bearer("dana"))).json()
    assert [j["job_id"] for j in by_offset["items"]] == [second["items"][0]["job_id"]]
    dated = await client_with_listeners.get("/api/v1/user/jobs", params={"date_from": "2000-01-01", "date_to": "2999-01-01"},
                             headers=bearer("dana"))
    assert dated.json()["total"] == 3
    wrong = await client_with_listeners.get("/api/v1/user/jobs", params={"date_from": "2030-01-02", "date_to": "2030-01-01"},
                             headers=bearer("dana"))
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "date_to"
    junk = await client_with_listeners.get("/api/v1/user/jobs", params={"cursor": "garbage!"}, headers=bearer("dana"))
    assert junk.status_code == 422 and junk.json()["errors"][0]["field"] == "cursor"


async def test_user_stats(client_with_listeners):
    await client_with_listeners.post("/api/v1/process", json=JOB, headers=bearer("erin"))
    stats = await client_with_listeners.get("/api/v1/user/jobs/stats", headers=bearer("erin"))
    assert stats.status_code == 200
    assert stats.json()["total_jobs"] == 1 and stats.json()["queued_jobs"] == 1
    service = await client_with_listeners.get("/api/v1/user/jobs/stats", params={"user_id": "erin"}, headers=SERVICE)
    assert service.json()["total_jobs"] == 1
    foreign = await client_with_listeners.get("/api/v1/user/jobs/stats", params={"user_id": "frank"}, headers=bearer("erin"))
    assert foreign.status_code == 403


async def test_tenant_matrix_lists(client_with_listeners, tenants_with_listeners):
    jobs = tenants_with_listeners["jobs"]
    own = {s: {j["job_id"] for j in (await client_with_listeners.get("/api/v1/user/jobs", headers=bearer(s))).json()["items"]}
           for s in ("user-a", "user-b", "user-c")}
    assert own == {"user-a": set(jobs["user-a"]), "user-b": set(jobs["user-b"]), "user-c": set(jobs["user-c"])}
    visible = {s: {j["job_id"] for j in (await client_with_listeners.get("/api/v1/user/jobs", params={"scope": "visible"},
                                                          headers=bearer(s))).json()["items"]}
               for s in ("user-a", "user-b", "user-c")}
    assert visible["user-b"] == set(jobs["user-b"]) | {tenants_with_listeners["team_job"]}
    assert visible["user-c"] == set(jobs["user-c"])
    for sub in ("user-a", "user-b"):
        team = await client_with_listeners.get(f"/api/v1/teams/{tenants_with_listeners['team']}/jobs", headers=bearer(sub))
        assert [j["job_id"] for j in team.json()["items"]] == [tenants_with_listeners["team_job"]]
        stats = await client_with_listeners.get(f"/api/v1/teams/{tenants_with_listeners['team']}/jobs/stats", headers=bearer(sub))
        assert stats.json()["total_jobs"] == 1
    for path in (f"/api/v1/teams/{tenants_with_listeners['team']}/jobs", f"/api/v1/teams/{tenants_with_listeners['team']}/jobs/stats"):
        outsider = await client_with_listeners.get(path, headers=bearer("user-c"))
        assert outsider.status_code == 404
    service = await client_with_listeners.get(f"/api/v1/teams/{tenants_with_listeners['team']}/jobs", headers=SERVICE)
    assert service.json()["total"] == 1


async def test_tenant_matrix_single_jobs(client, tenants):
    jobs, team_job = tenants["jobs"], tenants["team_job"]
    expectations = {  # (caller, job) -> may see
        ("user-b", team_job): True, ("user-c", team_job): False, ("user-b", jobs["user-a"][0]): False,
        ("user-a", jobs["user-b"][0]): False, ("user-c", jobs["user-a"][0]): False,
        ("user-a", jobs["user-c"][0]): False,
    }
    for (sub, job_id), visible in expectations.items():
        got = await client.get(f"/api/v1/jobs/{job_id}", headers=bearer(sub))
        assert got.status_code == (200 if visible else 404), (sub, job_id)
        history = await client.get(f"/api/v1/jobs/{job_id}/events", headers=bearer(sub))
        assert history.status_code == (200 if visible else 404)
        if not visible:
            patch = await client.patch(f"/api/v1/jobs/{job_id}", json={"clip_count": 2}, headers=bearer(sub))
            assert patch.status_code == 404
            delete = await client.delete(f"/api/v1/jobs/{job_id}", headers=bearer(sub))
            assert delete.status_code == 404
            as_of = await client.get(f"/api/v1/jobs/{job_id}", params={"as_of": "2999-01-01T00:00:00Z"},
                                     headers=bearer(sub))
            assert as_of.status_code == 404
    for job_id in jobs["user-c"]:
        assert (await client.get(f"/api/v1/jobs/{job_id}", headers=bearer("user-c"))).status_code == 200


async def test_a_deleted_team_cannot_be_taken_over_over_http(manager, client, tenants):
    """Issue 15, finding 2: a deleted team's jobs stay out of reach, whoever creates a team afterwards."""
    bobs = await manager.as_user("user-b").teams.create("bobs", owner_id="user-b")
    made = await client.post("/api/v1/process", json={**JOB, "team_id": str(bobs.team_id)}, headers=bearer("user-b"))
    assert made.status_code == 201, made.text
    assert (await client.delete(f"/api/v1/jobs/{made.json()['job_id']}", headers=bearer("user-b"))).status_code < 300
    await manager.as_user("user-b").teams.delete(bobs.team_id)
    alices = await manager.as_user("user-a").teams.create("mine", owner_id="user-a")
    assert alices.team_id != bobs.team_id  # the database issues ids and never issues one twice
    for sub in ("user-a", "user-b"):
        gone = await client.get(f"/api/v1/teams/{bobs.team_id}/jobs", headers=bearer(sub))
        assert gone.status_code == 404, gone.text
