"""Issue 19 over HTTP: the claim policy's admin endpoints (/api/v1/admin/queue), for service tokens only.

Pauses, caps and fair share change what a claim over HTTP hands out; every change is in the history
under the token's `sub`; end users get 403, bad bodies a 422 problem naming the field, and /metrics
shows the pauses (`vjm_queue_paused`). A server whose database role is a processor's reads the policy and
may not change it.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.support.http_app import FAST, JOB, http_settings
from tests.support.tokens import bearer, service_bearer
from videojobs import Settings, connect
from videojobs.http import create_app

QUEUE = "/api/v1/admin/queue"
CLAIM = "/api/v1/processor/jobs/claim"
OPS = service_bearer("ops-console")
PLATFORM = JOB["platform_target"]
OTHER = "instagram" if PLATFORM != "instagram" else "tiktok"


async def _queue_job(client: httpx.AsyncClient, user: str = "alice", **fields: object) -> str:
    response = await client.post("/api/v1/process", json={**JOB, **fields}, headers=bearer(user))
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


async def _claimed(client: httpx.AsyncClient, **request: object) -> list[str]:
    response = await client.post(CLAIM, json={"worker_id": "w1", "limit": 10, **request}, headers=OPS)
    assert response.status_code == 200, response.text
    return [attempt["job_id"] for attempt in response.json()["attempts"]]


async def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _paused_gauges(text: str) -> dict[str, float]:
    """The vjm_queue_paused samples, by platform."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'^vjm_queue_paused\{platform="(.*)"\} (\S+)$', text, re.M)}


async def test_a_paused_platform_is_not_claimed_until_it_is_resumed(client) -> None:
    job, other = await _queue_job(client), await _queue_job(client, platform_target=OTHER)
    paused = await _ok(await client.post(f"{QUEUE}/pause", json={"platform": PLATFORM, "reason": "encoder upgrade"},
                                         headers=OPS))
    assert (paused["setting"], paused["scope"], paused["actor"], paused["reason"]) == (
        "pause", PLATFORM, "ops-console", "encoder upgrade")
    assert await _claimed(client, platforms=[PLATFORM]) == []
    assert await _claimed(client) == [other]  # the other platform's job is claimed as ever
    policy = await _ok(await client.get(QUEUE, headers=OPS))
    assert [(p["platform"], p["actor"], p["reason"]) for p in policy["pauses"]] == [
        (PLATFORM, "ops-console", "encoder upgrade")]
    resumed = await _ok(await client.post(f"{QUEUE}/resume", json={"platform": PLATFORM}, headers=OPS))
    assert (resumed["setting"], resumed["scope"], resumed["reason"]) == ("resume", PLATFORM, None)
    assert await _claimed(client, platforms=[PLATFORM]) == [job]
    history = (await _ok(await client.get(f"{QUEUE}/history", headers=OPS)))["changes"]
    assert [(c["seq"], c["setting"], c["actor"]) for c in history] == [
        (resumed["seq"], "resume", "ops-console"), (paused["seq"], "pause", "ops-console")]


async def test_pausing_everything_shows_in_the_policy_and_the_metrics(client) -> None:
    await _queue_job(client)
    everything = await _ok(await client.post(f"{QUEUE}/pause", json={}, headers=OPS))
    assert (everything["scope"], everything["reason"]) == ("*", None)
    await _ok(await client.post(f"{QUEUE}/pause", json={"platform": OTHER}, headers=OPS))
    assert await _claimed(client) == []
    assert _paused_gauges((await client.get("/metrics")).text) == {"*": 1.0, OTHER: 1.0}
    await _ok(await client.post(f"{QUEUE}/resume", json={"platform": None, "reason": "done"}, headers=OPS))
    assert (await _ok(await client.get(QUEUE, headers=OPS)))["pauses"] == []
    assert _paused_gauges((await client.get("/metrics")).text) == {}
    assert len(await _claimed(client)) == 1


async def test_caps_bind_claims_and_fair_share_is_chosen(client) -> None:
    for _ in range(3):
        await _queue_job(client, "alice")
    await _queue_job(client, "bob")
    team = str(uuid.uuid4())
    changes = [await _ok(await client.put(f"{QUEUE}/caps", json=body, headers=OPS)) for body in (
        {"kind": "user", "key": "*", "max_processing": 1, "reason": "one each"},
        {"kind": "team", "key": team, "max_processing": 2},
        {"kind": "platform", "key": OTHER, "max_processing": 0})]
    assert [(c["setting"], c["scope"], c["value"]) for c in changes] == [
        ("cap", "user:*", {"max_processing": 1}), ("cap", f"team:{team}", {"max_processing": 2}),
        ("cap", f"platform:{OTHER}", {"max_processing": 0})]
    assert len(await _claimed(client)) == 2  # one of alice's, bob's one
    policy = await _ok(await client.get(QUEUE, headers=OPS))
    assert sorted((c["kind"], c["key"], c["max_processing"]) for c in policy["caps"]) == [
        ("platform", OTHER, 0), ("team", team, 2), ("user", "*", 1)]
    removed = await _ok(await client.put(f"{QUEUE}/caps", json={"kind": "user", "key": "*", "max_processing": None},
                                         headers=OPS))
    assert (removed["scope"], removed["value"]) == ("user:*", {"max_processing": None})
    assert len(await _claimed(client)) == 2  # alice's other two
    shared = await _ok(await client.put(f"{QUEUE}/fair-share", json={"by": "team", "reason": "studios"}, headers=OPS))
    assert (shared["setting"], shared["scope"], shared["value"]) == ("fair_share", "queue", {"fair_share": "team"})
    assert (await _ok(await client.get(QUEUE, headers=OPS)))["fair_share"] == "team"
    newest = (await _ok(await client.get(f"{QUEUE}/history", params={"limit": 2}, headers=OPS)))["changes"]
    assert [c["seq"] for c in newest] == [shared["seq"], removed["seq"]]


async def test_end_users_get_403_from_every_queue_endpoint(client) -> None:
    calls = [("GET", QUEUE, None), ("GET", f"{QUEUE}/history", None), ("POST", f"{QUEUE}/pause", {}),
             ("POST", f"{QUEUE}/resume", {}), ("PUT", f"{QUEUE}/caps", {"kind": "user", "key": "*", "max_processing": 9}),
             ("PUT", f"{QUEUE}/fair-share", {"by": "team"})]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=bearer("alice"))
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await _ok(await client.get(f"{QUEUE}/history", headers=OPS)))["changes"] == []


# A cap's body is told apart by its `kind`: its fields are named under it (as the maintenance actions are).
@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "pause", {"platform": "myspace"}, "platform"),
    ("POST", "pause", {"reason": " \t "}, "reason"),
    ("POST", "resume", {"reason": "x" * 501}, "reason"),
    ("POST", "resume", {"reason": "a\u0000b"}, "reason"),
    ("POST", "pause", {"platforms": [PLATFORM]}, "platforms"),
    ("PUT", "caps", {"kind": "galaxy", "key": "*", "max_processing": 1}, "kind"),
    ("PUT", "caps", {"kind": "team", "key": "studio", "max_processing": 1}, "team.key"),
    ("PUT", "caps", {"kind": "platform", "key": "myspace", "max_processing": 1}, "platform.key"),
    ("PUT", "caps", {"kind": "user", "key": "", "max_processing": 1}, "user.key"),
    ("PUT", "caps", {"kind": "user", "key": "bob", "max_processing": -1}, "user.max_processing"),
    ("PUT", "caps", {"kind": "user", "key": "bob", "max_processing": 2.0}, "user.max_processing"),
    ("PUT", "caps", {"kind": "user", "key": "bob", "max_processing": 1_000_001}, "user.max_processing"),
    ("PUT", "caps", {"kind": "user", "key": "bob"}, "user.max_processing"),
    ("PUT", "fair-share", {"by": "project"}, "by"),
    ("GET", "history?limit=0", None, "query.limit"),
    ("GET", "history?limit=1001", None, "query.limit"),
])
async def test_bad_input_is_a_422_problem_naming_the_field(client, method, path, body, field) -> None:
    response = await client.request(method, f"{QUEUE}/{path}", json=body, headers=OPS)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/validation-error") and problem["status"] == 422
    assert {e["field"] for e in problem["errors"]} == {field}, problem["errors"]
    assert (await _ok(await client.get(f"{QUEUE}/history", headers=OPS)))["changes"] == []


@pytest.fixture
async def processor_client(database_url):
    """The API on a manager whose database role is vjm_processor (a `vjm up` whose login is no admin)."""
    async with connect(settings=Settings(database_url=database_url), listeners=False,
                       service_role="vjm_processor") as processor:
        app = create_app(processor, settings=http_settings(database_url), options=FAST)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test") as c:
            yield c


async def test_a_processor_role_server_reads_the_policy_but_may_not_change_it(manager, processor_client) -> None:
    await manager.queue.pause(PLATFORM, reason="set by an admin")
    policy = await _ok(await processor_client.get(QUEUE, headers=OPS))
    assert [(p["platform"], p["reason"]) for p in policy["pauses"]] == [(PLATFORM, "set by an admin")]
    refused = await processor_client.post(f"{QUEUE}/resume", json={}, headers=OPS)
    assert refused.status_code == 403, refused.text  # no EXECUTE on the setters (080_grants.sql)
    assert [p["platform"] for p in (await manager.queue.policy()).pauses] == [PLATFORM]
    assert [c.setting for c in await manager.queue.history()] == ["pause"]
