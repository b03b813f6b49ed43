"""API fuzzing (issue 9, part 6): schemathesis in stateful mode, plus a corpus of hostile requests.

The app (videojobs.http.create_app) is served by uvicorn in a background thread (tests.support.servers) with
its own manager (the app's lifespan connects to this test's database). Two users and
the service drive it. Everything must answer without a 5xx, and no response given to
a user may carry another user's job (no teams are involved, so "their own" is exact).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error

from tests.support.databases import create_migrated_database, drop_database
from tests.support.factories import create_data
from tests.support.fault_sizes import scaled
from tests.support.http_app import FAST, http_settings
from tests.support.servers import serve_in_thread
from tests.support.tokens import AUDIENCE, SERVICE, TEST_JWT_SECRET, bearer
from videojobs.http import create_app
from videojobs.http.auth import SERVICE_ROLE, USER_ROLE

USERS = ("alice", "bob")
JOB = create_data()


@pytest.fixture
def served(sync_template):
    """(app, base URL): the API under uvicorn in a thread, on a database of its own (the app's lifespan connects)."""
    admin_url, template = sync_template
    url = asyncio.run(create_migrated_database(admin_url, template=template))
    app = create_app(settings=http_settings(url), options=FAST)
    with serve_in_thread(app) as base_url:
        yield app, base_url
    asyncio.run(drop_database(admin_url, url))


def assert_no_foreign_jobs(caller: str | None, response) -> None:
    """A user's 2xx response carries only that user's jobs."""
    if caller is None or response.status_code >= 300:
        return
    try:
        body = response.json()
    except ValueError:
        return
    rows = body.get("items", []) if isinstance(body, dict) else []
    rows = rows + ([body] if isinstance(body, dict) and "job_id" in body else [])
    for row in rows:
        if isinstance(row, dict) and "user_id" in row:
            assert row["user_id"] == caller, f"{caller} was shown a job of {row['user_id']}"


@pytest.mark.slow
def test_stateful_schemathesis(served) -> None:
    app, base_url = served
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema = schema.exclude(path="/api/v1/events/stream")
    calls = {"count": 0}

    class Workflow(schema.as_state_machine()):
        def __init__(self) -> None:
            super().__init__()
            # Per example, not per class: a replayed example must pick the same callers, or
            # hypothesis sees different responses for the same draws (FlakyStrategyDefinition).
            self.rng = random.Random(9)

        def get_call_kwargs(self, case):
            service = "/processor/" in case.path or "/admin/" in case.path or self.rng.random() < 0.1
            self.caller = None if service else self.rng.choice(USERS)
            return {"base_url": base_url, "timeout": 30, "headers": SERVICE if service else bearer(self.caller)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            calls["count"] += 1
            case.validate_response(response, checks=[not_a_server_error])
            assert_no_foreign_jobs(self.caller, response)

    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=scaled(15), stateful_step_count=10, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
    assert calls["count"] >= scaled(15)
    print(f"schemathesis stateful: {calls['count']} calls, 0 server errors, 0 cross-tenant reads")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _tokens() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "bob", "role": USER_ROLE, "aud": AUDIENCE, "exp": now + 600}
    return {
        "none-alg": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "expired": jwt.encode({**claims, "exp": now - 3600}, TEST_JWT_SECRET, algorithm="HS256"),
        "wrong-secret": jwt.encode(claims, "not-the-secret-0123456789abcdef", algorithm="HS256"),
        "forged-service": jwt.encode({**claims, "role": SERVICE_ROLE}, "guess", algorithm="HS256"),
        "wrong-audience": jwt.encode({**claims, "aud": "someone-else"}, TEST_JWT_SECRET, algorithm="HS256"),
        "no-exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, TEST_JWT_SECRET, algorithm="HS256"),
        "hs512": jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS512"),
        "control-sub": jwt.encode({**claims, "sub": "bob\x00\u202e"}, TEST_JWT_SECRET, algorithm="HS256"),
        "huge-sub": jwt.encode({**claims, "sub": "b" * 5000}, TEST_JWT_SECRET, algorithm="HS256"),
        "unknown-role": jwt.encode({**claims, "role": "postgres"}, TEST_JWT_SECRET, algorithm="HS256"),
        "garbage": "a.b.c",
        "dots": "..",
    }


def _hostile_requests(job_id: str) -> list[tuple[str, str, dict, bytes | None]]:
    alice = bearer("alice")
    json_headers = {**alice, "Content-Type": "application/json"}
    bomb = b'{"a":' * 5000 + b"1" + b"}" * 5000
    sqli = ["' OR 1=1 --", "x'); DROP TABLE vjm.job_events; --", "\\'; SELECT pg_sleep(10); --"]
    cases = [
        ("GET", f"/api/v1/jobs/{job_id}", {"X-Huge": "x" * 60_000, **alice}, None),
        ("GET", "/api/v1/user/jobs", {**alice, "X-Bad": b"\xff\xfe\xfd"}, None),
        ("POST", "/api/v1/process", json_headers, b'{"original_filename": "\xff\xfe.mp4"}'),
        ("POST", "/api/v1/process", json_headers, bomb),
        ("POST", "/api/v1/process", json_headers, b"[" * 100_000),
        ("POST", "/api/v1/process", json_headers, b'{"x": 1e999999}'),
        ("POST", "/api/v1/process", {**alice, "Content-Type": "text/plain"}, json.dumps(JOB).encode()),
        ("POST", "/api/v1/process", {**alice, "Content-Type": "application/xml"}, b"<job/>"),
        ("POST", "/api/v1/process", {**alice, "Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
        ("POST", "/api/v1/process", json_headers, json.dumps({**JOB, "original_filesize": -1}).encode()),
        ("POST", "/api/v1/process", json_headers, json.dumps({**JOB, "clip_count": -5}).encode()),
        ("POST", "/api/v1/process", json_headers, json.dumps({**JOB, "original_filesize": 2**70}).encode()),
        ("POST", "/api/v1/process", json_headers, json.dumps({**JOB, "user_id": "bob"}).encode()),
        ("POST", "/api/v1/process", json_headers,
         json.dumps({**JOB, "original_filename": "a\u0000b\u202e\u200b\u0007.mp4"}).encode()),
        ("POST", "/api/v1/process", json_headers, b"x" * 3_000_000),
        ("GET", "/api/v1/jobs/not-a-uuid", alice, None),
        ("GET", "/api/v1/jobs/00000000-0000-0000-0000-00000000000g", alice, None),
        ("GET", "/api/v1/jobs/%00", alice, None),
        ("GET", "/api/v1/jobs/" + "9" * 5000, alice, None),
        ("GET", "/api/v1/user/jobs?limit=-1&offset=-7", alice, None),
        ("GET", "/api/v1/user/jobs?limit=999999999999999999999", alice, None),
        ("GET", "/api/v1/user/jobs?cursor=%FF%FE", alice, None),
        ("GET", "/api/v1/user/jobs?status=queued&status=" + "x" * 10_000, alice, None),
        ("GET", "/api/v1/teams/not-a-team/jobs", alice, None),
        ("PATCH", f"/api/v1/jobs/{job_id}", json_headers, b'{"status": "completed"}'),
        ("PATCH", f"/api/v1/jobs/{job_id}", json_headers, b'{"status": null, "clip_count": "NaN"}'),
        ("POST", "/api/v1/processor/jobs/claim", json_headers, b'{"worker_id": "w", "limit": 1}'),
        ("POST", "/api/v1/admin/jobs/maintenance", json_headers, b'{"action": "rebuild"}'),
    ]
    for text in sqli:
        cases += [("GET", f"/api/v1/user/jobs?platform_target={httpx.QueryParams({'q': text})['q']}", alice, None),
                  ("GET", f"/api/v1/jobs/{text}", alice, None),
                  ("POST", "/api/v1/process", json_headers, json.dumps({**JOB, "original_filename": text}).encode())]
    for name, value in _tokens().items():
        cases.append(("GET", f"/api/v1/jobs/{job_id}", {"Authorization": f"Bearer {value}", "X-Case": name}, None))
        cases.append(("GET", "/api/v1/user/jobs", {"Authorization": f"Bearer {value}", "X-Case": name}, None))
    cases += [("GET", "/api/v1/user/jobs", {"Authorization": "Basic YWxpY2U6eA=="}, None),
              ("GET", "/api/v1/user/jobs", {"Authorization": "Bearer"}, None),
              ("GET", "/api/v1/user/jobs", {}, None)]
    return cases


@pytest.mark.slow
def test_hostile_requests(served) -> None:
    _, base_url = served
    with httpx.Client(base_url=base_url, timeout=30) as client:
        created = client.post("/api/v1/process", json=JOB, headers=bearer("bob"))
        assert created.status_code == 201, created.text
        bobs_job = created.json()["job_id"]
        for method, path, headers, body in _hostile_requests(bobs_job):
            response = client.request(method, path, headers=headers, content=body)
            label = f"{method} {path[:80]} {headers.get('X-Case', '')}"
            assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:200]}"
            if response.status_code < 400:  # errors may echo the requested id, never the job
                assert bobs_job not in response.text and '"user_id":"bob"' not in response.text.replace(" ", ""), \
                    f"{label} leaked bob's job: {response.text[:200]}"
        # Bob's job is intact, and only bob sees it.
        assert client.get(f"/api/v1/jobs/{bobs_job}", headers=bearer("bob")).status_code == 200
        assert client.get(f"/api/v1/jobs/{bobs_job}", headers=bearer("alice")).status_code == 404
        for user in USERS:
            page = client.get("/api/v1/user/jobs", headers=bearer(user)).json()
            assert all(item["user_id"] == user for item in page["items"])
    print(f"hostile corpus: {len(_hostile_requests(bobs_job))} requests, 0 server errors, 0 leaks")


def test_unknown_job_ids_are_404_not_500(served) -> None:
    _, base_url = served
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(5):
            response = client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=bearer("alice"))
            assert response.status_code == 404
