"""The endpoints the worker runtime calls over HTTP: the long-polled claim, the heartbeat that names the
jobs lost, requeue and release, the registry (POST /api/v1/processor/workers, GET /api/v1/admin/workers),
and the worker gauges of /metrics.

The held calls run against uvicorn with the app's lifespan (its feed hub) and a projector. Their own
recheck is set to RECHECK (far above what the tests wait for), so an answer that comes sooner was
woken by the change feed, not found by a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from tests.support.http_app import FAST, JOB, http_settings
from tests.support.servers import serve
from tests.support.tokens import SERVICE, bearer
from tests.support.waiting import eventually
from videojobs.http import create_app

RECHECK = 20.0
CLAIM = "/api/v1/processor/jobs/claim"
HEARTBEAT = "/api/v1/processor/heartbeat"
BEAT = {"worker_id": "encoder-1:42:abc", "host": "encoder-1", "pid": 42, "concurrency": 4, "running": 1,
        "platforms": ["tiktok"], "version": "0.1.0", "lease_seconds": 60}


@pytest.fixture
def held_app(manager_with_listeners, database_url):
    options = dataclasses.replace(FAST, long_poll_recheck_seconds=RECHECK)
    return create_app(manager_with_listeners, settings=http_settings(database_url), options=options)


@pytest.fixture
async def api(held_app) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(held_app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield client


async def _create(api: httpx.AsyncClient, platform: str | None = None) -> str:
    body = JOB if platform is None else {**JOB, "platform_target": platform}
    created = await api.post("/api/v1/process", json=body, headers=bearer("alice"))
    return created.json()["job_id"]


async def _held(held_app, claims: int = 0, watched: int = 0) -> None:
    """Until the app holds this many claims and watches this many jobs."""
    waits = held_app.state.vjm.worker_waits
    await eventually(lambda: waits.waiting == (claims, watched), within=10)


async def test_a_held_claim_answers_when_a_job_is_queued(api, held_app) -> None:
    claim = asyncio.create_task(api.post(CLAIM, json={"worker_id": "w1", "wait": 15, "lease_seconds": 30},
                                         headers=SERVICE))
    await _held(held_app, claims=1)
    queued_at = time.monotonic()
    job_id = await _create(api)
    answer = await claim
    assert time.monotonic() - queued_at < 5  # woken by the change feed (the recheck would be 20 s)
    [attempt] = answer.json()["attempts"]
    assert (attempt["job_id"], attempt["attempt"], attempt["worker_id"]) == (job_id, 1, "w1")
    held = await api.post(HEARTBEAT, json={"worker_id": "w1", "leases": [
        {"job_id": job_id, "attempt": 1, "seconds": 30}]}, headers=SERVICE)
    assert [lease["job_id"] for lease in held.json()["held"]] == [job_id] and held.json()["lost"] == []


async def test_a_claim_answers_at_once_when_a_job_is_queued_and_empty_after_its_wait(api) -> None:
    job_id = await _create(api)
    started = time.monotonic()
    first = await api.post(CLAIM, json={"worker_id": "w1", "wait": 15}, headers=SERVICE)
    assert [a["job_id"] for a in first.json()["attempts"]] == [job_id] and time.monotonic() - started < 5
    started = time.monotonic()
    empty = await api.post(CLAIM, json={"worker_id": "w1", "wait": 0.5}, headers=SERVICE)
    assert empty.json() == {"attempts": []} and 0.5 <= time.monotonic() - started < 5


async def test_a_claim_of_two_platforms_is_held_until_a_job_of_either_is_queued(api, held_app, manager) -> None:
    two = {"worker_id": "w1", "platforms": ["tiktok", "instagram"], "wait": 15}
    for platform in ("instagram", "tiktok"):
        claim = asyncio.create_task(api.post(CLAIM, json=two, headers=SERVICE))
        await _held(held_app, claims=1)
        queued_at = time.monotonic()
        job_id = await _create(api, platform)
        [attempt] = (await claim).json()["attempts"]
        assert time.monotonic() - queued_at < 5  # woken by the change feed (the recheck would be 20 s)
        assert attempt["job_id"] == job_id and attempt["job"]["platform_target"] == platform
    claim = asyncio.create_task(api.post(CLAIM, json=two, headers=SERVICE))
    await _held(held_app, claims=1)
    other = await _create(api, "youtube_shorts")  # wakes the claim, which finds nothing of its own and waits on
    mine = await _create(api, "tiktok")
    assert [a["job_id"] for a in (await claim).json()["attempts"]] == [mine]
    assert (await manager.get_job_by_id(other)).status == "queued"


async def test_a_claim_names_one_platform_or_several(client) -> None:
    tiktok, insta, shorts = [await _create(client, p) for p in ("tiktok", "instagram", "youtube_shorts")]
    one = await client.post(CLAIM, json={"worker_id": "w1", "limit": 5, "platform_target": "instagram"},
                            headers=SERVICE)
    assert [a["job_id"] for a in one.json()["attempts"]] == [insta]
    both = await client.post(CLAIM, json={"worker_id": "w1", "limit": 5, "platform_target": "youtube_shorts",
                                          "platforms": ["tiktok"]}, headers=SERVICE)
    assert [a["job_id"] for a in both.json()["attempts"]] == [tiktok, shorts]  # either one's, oldest first


@pytest.mark.parametrize("platforms", [[], ["myspace"], [None], "tiktok", ["tiktok"] * 17, [["tiktok"]]])
async def test_a_claim_with_a_bad_set_of_platforms_is_refused_and_claims_nothing(client, manager,
                                                                                  platforms) -> None:
    job_id = await _create(client)
    refused = await client.post(CLAIM, json={"worker_id": "w1", "platforms": platforms}, headers=SERVICE)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/validation-error")
    assert [e.type for e in await manager.audit.history(job_id)] == ["create"]


async def test_a_heartbeat_never_brings_a_lease_deadline_closer(client) -> None:
    job_id = await _create(client)
    await client.post(CLAIM, json={"worker_id": "w1", "lease_seconds": 30}, headers=SERVICE)

    async def beat(seconds: float) -> datetime:
        answer = await client.post(HEARTBEAT, json={"worker_id": "w1", "leases": [
            {"job_id": job_id, "attempt": 1, "seconds": seconds}]}, headers=SERVICE)
        [held] = answer.json()["held"]
        return datetime.fromisoformat(held["expires_at"])

    extended = await beat(600)  # ctx.extend(600)
    assert await beat(30) == extended  # a heartbeat with the old length, late: the deadline stays
    assert await beat(900) > extended  # a longer one still moves it


async def test_the_server_caps_the_wait(manager, database_url) -> None:
    options = dataclasses.replace(FAST, long_poll_max_seconds=0.2)
    app = create_app(manager, settings=http_settings(database_url), options=options)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        started = time.monotonic()
        answer = await client.post(CLAIM, json={"worker_id": "w1", "wait": 30}, headers=SERVICE)
    assert answer.json() == {"attempts": []} and time.monotonic() - started < 5


async def test_a_held_heartbeat_names_a_job_cancelled_meanwhile(api, held_app, manager) -> None:
    job_id = await _create(api)
    await api.post(CLAIM, json={"worker_id": "w1", "lease_seconds": 30}, headers=SERVICE)
    leases = [{"job_id": job_id, "attempt": 1, "seconds": 30}]
    beat = asyncio.create_task(api.post(HEARTBEAT, json={"worker_id": "w1", "leases": leases, "wait": 15},
                                        headers=SERVICE))
    await _held(held_app, watched=1)
    cancelled_at = time.monotonic()
    await manager.cancel_job(job_id, reason="changed my mind")
    answer = (await beat).json()
    assert time.monotonic() - cancelled_at < 5 and answer == {"held": [], "lost": [job_id]}
    await _held(held_app)  # nothing left watched


async def test_a_heartbeat_names_leases_it_does_not_hold_at_once(api) -> None:
    stranger = str(uuid.uuid4())
    started = time.monotonic()
    answer = await api.post(HEARTBEAT, json={"worker_id": "w1", "wait": 15, "leases": [
        {"job_id": stranger, "attempt": 1, "seconds": 5}]}, headers=SERVICE)
    assert answer.json() == {"held": [], "lost": [stranger]} and time.monotonic() - started < 5


async def test_requeue_and_release_are_fenced_by_the_attempt(client) -> None:
    created = [(await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))).json()["job_id"]
               for _ in range(2)]
    claimed = await client.post(CLAIM, json={"worker_id": "w1", "limit": 2}, headers=SERVICE)
    assert {a["job_id"] for a in claimed.json()["attempts"]} == set(created)
    first, second = (f"/api/v1/processor/jobs/{job_id}" for job_id in created)
    stale = await client.post(f"{first}/release", json={"attempt": 2}, headers=SERVICE)
    assert stale.status_code == 409 and stale.json()["type"].endswith("/stale-attempt")
    released = await client.post(f"{first}/release", json={"attempt": 1, "reason": "draining"}, headers=SERVICE)
    assert (released.json()["status"], released.json()["attempts_left"]) == ("queued", 3)  # the attempt given back
    requeued = await client.post(f"{second}/requeue", json={"attempt": 1, "error": "busy", "retry_after": 60},
                                 headers=SERVICE)
    assert (requeued.json()["status"], requeued.json()["attempts_left"]) == ("queued", 2)
    again = await client.post(CLAIM, json={"worker_id": "w2", "limit": 2}, headers=SERVICE)
    assert [a["job_id"] for a in again.json()["attempts"]] == [created[0]]  # the other waits out its 60 s
    refused = await client.post(f"{first}/requeue", json={"attempt": 1}, headers=bearer("alice"))
    assert refused.status_code == 403


async def test_the_registry_lists_what_workers_say_and_metrics_count_them(client) -> None:
    assert (await client.post("/api/v1/processor/workers", json=BEAT, headers=SERVICE)).status_code == 204
    stopped = {**BEAT, "worker_id": "encoder-2:7:def", "stopped": True}
    assert (await client.post("/api/v1/processor/workers", json=stopped, headers=SERVICE)).status_code == 204
    listed = (await client.get("/api/v1/admin/workers", headers=SERVICE)).json()["workers"]
    assert [(w["worker_id"], w["state"], w["running"]) for w in listed] == [
        ("encoder-1:42:abc", "running", 1), ("encoder-2:7:def", "stopped", 1)]
    assert listed[0]["platforms"] == ["tiktok"] and listed[0]["host"] == "encoder-1"
    for path in ("/api/v1/admin/workers",):
        assert (await client.get(path, headers=bearer("alice"))).status_code == 403
    assert (await client.post("/api/v1/processor/workers", json=BEAT, headers=bearer("alice"))).status_code == 403
    metrics = (await client.get("/metrics")).text
    for line in ('vjm_workers{state="running"} 1.0', 'vjm_workers{state="stopped"} 1.0',
                 'vjm_workers{state="lost"} 0.0', "vjm_worker_running_jobs 1.0", "vjm_worker_slots 4.0"):
        assert line in metrics, line


async def test_stopping_the_app_answers_held_calls_at_once(api, held_app) -> None:
    claim = asyncio.create_task(api.post(CLAIM, json={"worker_id": "w1", "wait": 30}, headers=SERVICE))
    await _held(held_app, claims=1)
    started = time.monotonic()
    await held_app.state.vjm.close_feed_hub()
    assert (await claim).json() == {"attempts": []} and time.monotonic() - started < 5


async def test_a_claim_whose_client_left_claims_nothing(api, held_app, manager) -> None:
    claim = asyncio.create_task(api.post(CLAIM, json={"worker_id": "w1", "wait": 15}, headers=SERVICE))
    await _held(held_app, claims=1)
    claim.cancel()  # the worker stops: its connection closes while the claim is held
    with contextlib.suppress(asyncio.CancelledError):
        await claim
    job_id = await _create(api)  # wakes the held claim, which finds its client gone
    await eventually(lambda: _claims_answered(held_app) == 1, within=10)  # the held call has ended
    assert [e.type for e in await manager.audit.history(job_id)] == ["create"]


def _claims_answered(app) -> float:
    """Claim requests the app has finished (its request timer observes each one as it ends)."""
    samples = [sample for family in app.state.vjm.metrics.registry.collect() for sample in family.samples]
    return sum(s.value for s in samples if s.name == "vjm_http_request_duration_seconds_count"
               and s.labels.get("route") == CLAIM)
