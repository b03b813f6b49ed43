"""Teams over HTTP: create, list, members, a team's jobs, delete (a new user's wish, issue 16)."""

from __future__ import annotations

from tests.support.http_app import JOB
from tests.support.tokens import SERVICE, bearer


async def test_a_team_from_creation_to_deletion(client_with_listeners) -> None:
    made = await client_with_listeners.post("/api/v1/teams", json={"name": "studio"}, headers=bearer("alice"))
    assert made.status_code == 201, made.text
    team = made.json()
    assert team["owner_id"] == "alice" and team["name"] == "studio"
    team_id = team["team_id"]
    assert [t["team_id"] for t in (await client_with_listeners.get("/api/v1/teams", headers=bearer("alice"))).json()] == [team_id]
    assert (await client_with_listeners.get("/api/v1/teams", headers=bearer("bob"))).json() == []

    added = await client_with_listeners.post(f"/api/v1/teams/{team_id}/members", json={"user_id": "bob"}, headers=bearer("alice"))
    assert added.status_code == 201 and added.json()["user_id"] == "bob", added.text
    members = (await client_with_listeners.get(f"/api/v1/teams/{team_id}/members", headers=bearer("bob"))).json()
    assert {(m["user_id"], m["role"]) for m in members} == {("alice", "owner"), ("bob", "member")}

    # bob's team job is alice's to see; carol, outside, gets 404 for everything about the team.
    job = await client_with_listeners.post("/api/v1/process", json={**JOB, "team_id": team_id}, headers=bearer("bob"))
    assert job.status_code == 201, job.text
    listed = (await client_with_listeners.get(f"/api/v1/teams/{team_id}/jobs", headers=bearer("alice"))).json()
    assert [j["job_id"] for j in listed["items"]] == [job.json()["job_id"]] and listed["total"] == 1
    for method, path, body in (("GET", f"/api/v1/teams/{team_id}/members", None),
                               ("POST", f"/api/v1/teams/{team_id}/members", {"user_id": "carol"}),
                               ("DELETE", f"/api/v1/teams/{team_id}", None)):
        r = await client_with_listeners.request(method, path, json=body, headers=bearer("carol"))
        assert r.status_code == 404 and r.json()["type"].endswith("team-not-found"), (method, path, r.text)

    # A member is not the owner: may not add anyone, may leave.
    r = await client_with_listeners.post(f"/api/v1/teams/{team_id}/members", json={"user_id": "dave"}, headers=bearer("bob"))
    assert r.status_code == 403, r.text
    r = await client_with_listeners.delete(f"/api/v1/teams/{team_id}", headers=bearer("alice"))
    assert r.status_code == 409, r.text  # it still has a job
    r = await client_with_listeners.delete(f"/api/v1/jobs/{job.json()['job_id']}", headers=bearer("bob"))
    assert r.status_code == 204, r.text
    assert (await client_with_listeners.delete(f"/api/v1/teams/{team_id}/members/bob", headers=bearer("bob"))).status_code == 204
    assert (await client_with_listeners.delete(f"/api/v1/teams/{team_id}/members/bob", headers=bearer("alice"))).status_code == 404
    assert (await client_with_listeners.delete(f"/api/v1/teams/{team_id}", headers=bearer("alice"))).status_code == 204
    assert (await client_with_listeners.get("/api/v1/teams", headers=bearer("alice"))).json() == []


async def test_services_name_the_owner(client) -> None:
    r = await client.post("/api/v1/teams", json={"name": "agency"}, headers=SERVICE)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "owner_id", r.text
    r = await client.post("/api/v1/teams", json={"name": "agency", "owner_id": "carol"}, headers=SERVICE)
    assert r.status_code == 201 and r.json()["owner_id"] == "carol", r.text
    r = await client.post("/api/v1/teams", json={"name": "x", "owner_id": "carol"}, headers=bearer("alice"))
    assert r.status_code == 403, r.text
