"""The SSE stream over a real socket (uvicorn in the test's loop): visibility, resume, heartbeats."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.support.http_app import JOB
from tests.support.sse import EventParser, is_comment
from tests.support.tokens import SERVICE, bearer


async def read_events(url: str, headers: dict, count: int, *, params: dict | None = None,
                      limit_s: float = 15.0) -> tuple[list[dict], int]:
    """Read `count` job_change events (then disconnect); also return how many heartbeats were seen."""
    events, pings, parser = [], 0, EventParser()
    async with httpx.AsyncClient(timeout=limit_s) as client, asyncio.timeout(limit_s):
        async with client.stream("GET", f"{url}/api/v1/events/stream", headers=headers, params=params) as resp:
            assert resp.status_code == 200, await resp.aread()
            assert resp.headers["content-type"].startswith("text/event-stream")
            async for line in resp.aiter_lines():
                if is_comment(line):
                    pings += 1
                elif event := parser.feed(line):
                    events.append(event)
                    if len(events) >= count:
                        break
    return events, pings


async def _create(base_url: str, sub: str, n: int, **extra) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        ids = []
        for _ in range(n):
            r = await client.post("/api/v1/process", json={**JOB, **extra}, headers=bearer(sub))
            assert r.status_code == 201
            ids.append(r.json()["job_id"])
        return ids


async def test_resume_from_last_event_id_has_no_gap_and_no_duplicate(live_server_with_listeners):
    await _create(live_server_with_listeners, "alice", 6)
    first, _ = await read_events(live_server_with_listeners, bearer("alice"), 3)
    last_id = first[-1]["id"]
    more_ids = await _create(live_server_with_listeners, "alice", 2)  # while disconnected
    second, _ = await read_events(live_server_with_listeners, {**bearer("alice"), "Last-Event-ID": str(last_id)}, 5)
    seqs = [e["id"] for e in first + second]
    assert seqs == sorted(set(seqs)), "duplicate or out of order"
    assert all(e["id"] == e["data"]["seq"] for e in first + second)
    everything, _ = await read_events(live_server_with_listeners, bearer("alice"), 8)
    assert [e["id"] for e in everything] == seqs, "a gap: the resumed stream missed a change"
    assert {e["data"]["job_id"] for e in second[-2:]} == set(more_ids)
    by_param, _ = await read_events(live_server_with_listeners, bearer("alice"), 1, params={"after": last_id})
    assert by_param[0]["id"] == second[0]["id"]


async def test_stream_shows_only_what_the_caller_may_see(live_server_with_listeners, manager_with_listeners):
    team = await manager_with_listeners.teams.create("crew", owner_id="user-a")
    await manager_with_listeners.teams.add_member(team.team_id, "user-b")
    a_own = await _create(live_server_with_listeners, "user-a", 1)
    c_own = await _create(live_server_with_listeners, "user-c", 2)
    a_team = await _create(live_server_with_listeners, "user-a", 1, team_id=str(team.team_id))
    b_own = await _create(live_server_with_listeners, "user-b", 1)
    seen_b, _ = await read_events(live_server_with_listeners, bearer("user-b"), 2)
    assert [e["data"]["job_id"] for e in seen_b] == a_team + b_own
    seen_c, _ = await read_events(live_server_with_listeners, bearer("user-c"), 2)
    assert [e["data"]["job_id"] for e in seen_c] == c_own
    seen_a, _ = await read_events(live_server_with_listeners, bearer("user-a"), 2)
    assert [e["data"]["job_id"] for e in seen_a] == a_own + a_team
    service, _ = await read_events(live_server_with_listeners, SERVICE, 5)
    assert len(service) == 5
    for events, sub in ((seen_b, "user-b"), (seen_c, "user-c")):
        for event in events:
            assert event["data"]["user_id"] == sub or event["data"]["team_id"] == str(team.team_id)


async def test_live_changes_and_heartbeats(live_server_with_listeners):
    [job_id] = await _create(live_server_with_listeners, "alice", 1)
    statuses, pinged = [], False
    async with httpx.AsyncClient(base_url=live_server_with_listeners, timeout=15) as client, asyncio.timeout(15):
        async with client.stream("GET", "/api/v1/events/stream", headers=bearer("alice")) as resp:
            async for line in resp.aiter_lines():
                if line.startswith(":") and statuses == ["queued"] and not pinged:
                    pinged = True  # a heartbeat arrived while idle: now change the job live
                    changed = await client.patch(f"/api/v1/jobs/{job_id}", json={"status": "cancelled"},
                                                 headers=bearer("alice"))
                    assert changed.status_code == 200
                elif line.startswith("data:"):
                    statuses.append(json.loads(line[5:])["status"])
                    if len(statuses) == 2:
                        break
    assert pinged and statuses == ["queued", "cancelled"]


async def test_stream_errors_are_problems(client):
    bad = await client.get("/api/v1/events/stream", headers={**bearer("alice"), "Last-Event-ID": "abc"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "header.last-event-id"
    negative = await client.get("/api/v1/events/stream", params={"after": -1}, headers=bearer("alice"))
    assert negative.status_code == 422
    anonymous = await client.get("/api/v1/events/stream")
    assert anonymous.status_code == 401
