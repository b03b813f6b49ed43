"""POST /api/v1/process with an idempotency key (the Idempotency-Key header of the IETF httpapi draft, or the
body's idempotency_key): a replay answers as the first request did, a different body is 422, a request while
the first is still in progress is 409; under a race, one job that every caller gets."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support.http_app import JOB
from tests.support.start_line import start_line
from tests.support.tokens import SERVICE, bearer
from videojobs.http import idempotency

PROCESS = "/api/v1/process"
EVENTS = "SELECT count(*) FROM vjm.job_events"


async def post(client: httpx.AsyncClient, key: str | None = '"upload-1"', sub: str = "alice",
               **fields) -> httpx.Response:
    headers = bearer(sub) | ({"Idempotency-Key": key} if key is not None else {})
    return await client.post(PROCESS, json={**JOB, **fields}, headers=headers)


async def test_a_replay_answers_as_the_first_request_did_and_creates_nothing(client, pool) -> None:
    first = await post(client)
    assert first.status_code == 201 and first.json()["idempotency_key"] == "upload-1"
    claimed = await client.post("/api/v1/processor/jobs/claim", json={"worker_id": "w1", "limit": 1}, headers=SERVICE)
    assert claimed.json()["attempts"][0]["job_id"] == first.json()["job_id"]  # the job has moved on since
    before = await pool.fetchval(EVENTS)
    again = await post(client)
    assert (again.status_code, again.content, again.headers["location"]) == (201, first.content,
                                                                              first.headers["location"])
    assert await pool.fetchval(EVENTS) == before


async def test_the_same_key_with_another_body_is_422_and_creates_nothing(client, pool) -> None:
    first = await post(client)
    before = await pool.fetchval(EVENTS)
    refused = await post(client, clip_count=9)
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("/idempotency-key-reused") and first.json()["job_id"] in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["idempotency_key"]
    assert await pool.fetchval(EVENTS) == before


async def test_a_request_while_the_first_is_in_progress_gets_409_then_the_first_ones_answer(client, pool) -> None:
    async with pool.acquire() as first, first.transaction():  # the first request: its key taken, not committed
        held = await first.fetchrow(
            "SELECT job_id FROM vjm.append_event(NULL, 'create', $1, 'alice', NULL, NULL, 'alice', NULL)",
            {**JOB, "max_attempts": 3, "idempotency_key": "upload-1"})
        busy = await post(client)
        assert busy.status_code == 409 and busy.json()["type"].endswith("/idempotency-key-in-use")
        assert busy.headers["retry-after"] == "1"
    done = await post(client)
    assert done.status_code == 201 and done.json()["job_id"] == str(held["job_id"])
    assert await pool.fetchval(EVENTS) == 1


async def _post_until_answered(client: httpx.AsyncClient, team_id: str, seen: list[int]) -> httpx.Response:
    """POST, and again after a 409 (the draft's answer while the first is in progress), within a deadline."""
    deadline = time.monotonic() + 30
    while True:
        response = await post(client, key="race", team_id=team_id)
        seen.append(response.status_code)
        if response.status_code != 409 or time.monotonic() > deadline:
            return response


async def test_eight_concurrent_posts_with_one_key_make_one_job_that_all_get(client, pool) -> None:
    team = (await client.post("/api/v1/teams", json={"name": "studio"}, headers=bearer("alice"))).json()
    seen: list[int] = []
    async with start_line(pool, team["team_id"]) as until_waiting:
        racers = [asyncio.create_task(_post_until_answered(client, team["team_id"], seen)) for _ in range(8)]
        await until_waiting(8)  # eight requests inside the guard, none has reached the key
    answers = await asyncio.gather(*racers)
    assert {r.status_code for r in answers} == {201} and set(seen) <= {201, 409}
    assert len({r.content for r in answers}) == 1  # the same job, the same answer
    assert await pool.fetchval(EVENTS) == 1


@pytest.mark.parametrize(("header", "key"), [('"k-1"', "k-1"), ("k-1", "k-1"), ('"a\\"b\\\\c"', 'a"b\\c'),
                                             ("a\"b", 'a"b')])
async def test_the_header_is_a_structured_string_or_the_bare_key(client, header: str, key: str) -> None:
    response = await post(client, key=header)
    assert response.status_code == 201 and response.json()["idempotency_key"] == key
    same = await post(client, key=None, idempotency_key=key)  # the body's field is the same key
    assert same.status_code == 201 and same.json()["job_id"] == response.json()["job_id"]
    both = await post(client, key=header, idempotency_key=key)
    assert both.status_code == 201 and both.json()["job_id"] == response.json()["job_id"]


async def test_the_header_and_the_body_must_name_one_key(client, pool) -> None:
    response = await post(client, key="one", idempotency_key="other")
    assert response.status_code == 422 and [e["field"] for e in response.json()["errors"]] == ["idempotency_key"]
    assert await pool.fetchval(EVENTS) == 0


@pytest.mark.parametrize("header", ['"unterminated', '""', '"', "two words", '"two words"', "x" * 201,
                                    '"' + "x" * 201 + '"', '"a\\b"'])
async def test_a_malformed_header_is_422_and_creates_nothing(client, pool, header: str) -> None:
    response = await post(client, key=header)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [idempotency.FIELD]
    assert await pool.fetchval(EVENTS) == 0


async def test_keys_are_per_user(client, pool) -> None:
    alice, bob = await post(client, sub="alice"), await post(client, sub="bob")
    assert alice.status_code == bob.status_code == 201 and alice.json()["job_id"] != bob.json()["job_id"]
    assert (await post(client, sub="bob")).json()["job_id"] == bob.json()["job_id"]
    assert await pool.fetchval(EVENTS) == 2


async def test_the_document_states_the_header_and_its_answers(client) -> None:
    for headers in (bearer("alice"), SERVICE):
        document = (await client.get("/openapi.json", headers=headers)).json()
        operation = document["paths"][PROCESS]["post"]
        [header] = [p for p in operation["parameters"] if p["in"] == "header"]
        assert header["name"] == "Idempotency-Key" and not header.get("required", False)
        assert header["schema"]["pattern"] == idempotency.HEADER_PATTERN
        assert {"201", "409", "422"} <= set(operation["responses"])
        body = document["components"]["schemas"]["CreateJobRequest"]["properties"]["idempotency_key"]
        assert "Idempotency-Key" in body["description"]
