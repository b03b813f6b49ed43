"""JWT failures (401), role checks (403), body limits (413), database down (503), health and metrics."""

from __future__ import annotations

import time

import asyncpg
import jwt
import pytest

from tests.support.http_app import JOB
from tests.support.tokens import AUDIENCE, SERVICE, TEST_JWT_SECRET, bearer, token

PROBLEM = "application/problem+json"


def _claims(**over):
    now = int(time.time())
    return {"sub": "alice", "role": "authenticated", "aud": AUDIENCE, "iat": now, "exp": now + 60, **over}


BAD_TOKENS = {
    "missing": None,
    "not a bearer": "Basic YWxpY2U6cHc=",
    "malformed": "Bearer not.a.jwt",
    "bad signature": "Bearer " + jwt.encode(_claims(), "another-secret-of-sufficient-length!!", algorithm="HS256"),
    "expired": "Bearer " + jwt.encode(_claims(exp=int(time.time()) - 3600), TEST_JWT_SECRET, algorithm="HS256"),
    "wrong audience": "Bearer " + jwt.encode(_claims(aud="someone-else"), TEST_JWT_SECRET, algorithm="HS256"),
    "no audience": "Bearer " + jwt.encode({k: v for k, v in _claims().items() if k != "aud"}, TEST_JWT_SECRET,
                                          algorithm="HS256"),
    "no exp": "Bearer " + jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, TEST_JWT_SECRET, algorithm="HS256"),
    "alg none": "Bearer " + jwt.encode(_claims(), None, algorithm="none"),
    "no sub": "Bearer " + jwt.encode({k: v for k, v in _claims().items() if k != "sub"}, TEST_JWT_SECRET, algorithm="HS256"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_tokens_get_401_with_a_challenge(client, case):
    header = BAD_TOKENS[case]
    response = await client.get("/api/v1/user/jobs", headers={"Authorization": header} if header else {})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == PROBLEM


async def test_other_roles_get_403(client):
    response = await client.get("/api/v1/user/jobs", headers={"Authorization": f"Bearer {token('x', 'anon')}"})
    assert response.status_code == 403


async def test_oversized_bodies_get_413(client):
    big = {**JOB, "original_filename": "a" * (70 * 1024)}
    declared = await client.post("/api/v1/process", json=big, headers=bearer("alice"))
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM

    async def chunks():
        for _ in range(80):
            yield b"x" * 1024

    chunked = await client.post("/api/v1/process", content=chunks(),
                                headers={**bearer("alice"), "content-type": "application/json"})
    assert chunked.status_code == 413
    small = await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))
    assert small.status_code == 201


async def test_healthz_and_metrics(client_with_listeners, manager_with_listeners):
    await client_with_listeners.post("/api/v1/process", json=JOB, headers=bearer("alice"))
    health = await client_with_listeners.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["database"]["status"] == "ok" and body["status"] in ("ok", "degraded")
    assert "events_behind" in body["projector"] and body["detector"]["overdue_jobs"] == 0
    # Transition counts are the projector's (applied events): they follow the projection, within its lag.
    assert await manager_with_listeners.maintenance.wait_for_projection(10)
    metrics = await client_with_listeners.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    for family in ("vjm_http_request_duration_seconds_bucket", "vjm_projector_lag_events", "vjm_stuck_resets_total",
                   'vjm_db_pool_connections{pool="service",state="max"}', 'vjm_jobs{status="queued"}'):
        assert family in text, family
    assert 'route="/api/v1/process"' in text


async def _block_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
    finally:
        await conn.close()


async def _unblock_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await conn.close()


async def test_database_down_gives_503_with_retry_after(client, database_url, pg_server):
    from store import with_database

    created = await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))
    job_id = created.json()["job_id"]
    probe = await asyncpg.connect(database_url)
    name = await probe.fetchval("SELECT current_database()")
    await probe.close()
    await _block_database(with_database(pg_server.url, "postgres"), name)
    try:
        for method, path, kwargs in (("GET", f"/api/v1/jobs/{job_id}", {"headers": bearer("alice")}),
                                     ("POST", "/api/v1/process", {"json": JOB, "headers": bearer("alice")}),
                                     ("POST", "/api/v1/processor/jobs/claim",
                                      {"json": {"worker_id": "w"}, "headers": SERVICE}),
                                     ("GET", "/healthz", {})):
            response = await client.request(method, path, **kwargs)
            assert response.status_code == 503, (path, response.text)
            assert int(response.headers["retry-after"]) > 0
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
    finally:
        await _unblock_database(with_database(pg_server.url, "postgres"), name)
    again = await client.get(f"/api/v1/jobs/{job_id}", headers=bearer("alice"))
    assert again.status_code == 200


