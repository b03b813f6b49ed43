"""Issue 15, findings 6 and 7 over HTTP: strict numbers, file names without bidi controls or
separators, an odd Last-Event-ID is a 4xx problem (not a 500), and a 403 never carries
PostgreSQL's own wording."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.http_app import JOB
from tests.support.tokens import bearer

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(("field", "value"), [
    ("clip_count", True), ("clip_count", "1"), ("clip_count", 1.0), ("clip_count", 1e30),
    ("original_filesize", "1024"), ("original_filesize", False), ("max_attempts", "3"), ("max_attempts", -3),
    ("original_filename", "line\u2028sep.mp4"), ("original_filename", "para\u2029sep.mp4"),
    ("original_filename", "rtl\u202egnp.mp4"), ("original_filename", "iso\u2068late.mp4"),
    ("priority", 10), ("priority", "9"), ("priority", 1.0), ("run_at", "2030-01-01T10:00:00"),
    ("run_at", "2030-02-31T10:00:00Z"), ("run_at", "tomorrow"), ("run_at", 1893456000),
])
async def test_a_create_with_a_loose_number_or_a_hostile_file_name_is_422(client, database_url, field, value) -> None:
    response = await client.post("/api/v1/process", json={**JOB, field: value}, headers=bearer("alice"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in {e["field"] for e in response.json()["errors"]}
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM vjm.job_events") == 0
    finally:
        await conn.close()


async def test_a_metadata_change_with_a_loose_number_is_422(client) -> None:
    job = (await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))).json()
    for value in (True, "2", 2.5):
        response = await client.patch(f"/api/v1/jobs/{job['job_id']}", json={"clip_count": value},
                                      headers=bearer("alice"))
        assert response.status_code == 422, (value, response.text)
    good = await client.patch(f"/api/v1/jobs/{job['job_id']}", json={"clip_count": 2}, headers=bearer("alice"))
    assert good.status_code == 200 and good.json()["clip_count"] == 2


# Header bytes are read as latin-1: these are the digits str.isdigit() accepts and int() refuses.
@pytest.mark.parametrize("last_event_id", ["\u00b2", "\u00b9", "12\u00b3"])
async def test_a_last_event_id_of_non_ascii_digits_is_a_problem_not_a_500(client, last_event_id) -> None:
    response = await client.get("/api/v1/events/stream",
                                headers={**bearer("alice"), "Last-Event-ID": last_event_id.encode("latin-1")})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "header.last-event-id"


async def test_a_users_forbidden_move_is_a_403_without_database_wording(client) -> None:
    job = (await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))).json()
    response = await client.patch(f"/api/v1/jobs/{job['job_id']}", json={"status": "processing"},
                                  headers=bearer("alice"))
    assert response.status_code == 403
    assert not any(w in response.text for w in ("row-level security", "policy", "permission denied"))
