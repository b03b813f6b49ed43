"""W8's pieces (bench/http_hey.py, bench/http_ceiling.py): the ceiling app answers as vjm's create does
(201 with an id, 401 without a valid token, 422 for a body the rules refuse), and hey's real output
parses into figures that agree with each other and with the rows the server wrote."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import asyncpg
import httpx
import jwt
import pytest

from bench import http_ceiling, http_hey
from tests.support.servers import free_port
from videojobs.http.auth import SERVICE_ROLE, mint_token

SECRET = http_hey.SECRET


@pytest.fixture
async def ceiling(database_url: str, monkeypatch) -> AsyncIterator[httpx.AsyncClient]:
    """The ceiling app over ASGI, on this test's database (its pool set as its lifespan would)."""
    monkeypatch.setenv("CEILING_JWT_SECRET", SECRET)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    await pool.execute(http_ceiling.SCHEMA)
    http_ceiling.app.state.pool = pool
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_ceiling.app),
                                     base_url="http://ceiling.test") as client:
            yield client
    finally:
        await pool.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_ceiling_creates_a_row_and_answers_201_with_its_id(ceiling, database_url) -> None:
    answer = await ceiling.post("/api/v1/process", json=http_hey.JOB, headers=_auth(mint_token(SECRET, sub="ann")))
    assert answer.status_code == 201, answer.text
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM http_ceiling.jobs WHERE id = $1::uuid", answer.json()["id"])
    finally:
        await conn.close()
    assert row["user_id"] == "ann" and row["clip_count"] == http_hey.JOB["clip_count"]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Basic abc"}, _auth(mint_token("another-secret-0123456789-0123456789", sub="ann")),
    _auth(mint_token(SECRET, sub="ann", ttl_seconds=-60)), _auth(mint_token(SECRET, sub="ann", audience="other")),
    _auth(mint_token(SECRET, sub="ann", role=SERVICE_ROLE)), _auth(mint_token(SECRET, sub=None)),
    _auth(jwt.encode({"sub": "ann", "role": "authenticated", "aud": "authenticated"}, SECRET)),  # no exp
], ids=["none", "basic", "signature", "expired", "audience", "service", "no-sub", "no-exp"])
async def test_the_ceiling_refuses_a_missing_or_bad_token_with_401(ceiling, headers) -> None:
    answer = await ceiling.post("/api/v1/process", json=http_hey.JOB, headers=headers)
    assert answer.status_code == 401, answer.text


@pytest.mark.parametrize("change", [
    {"clip_count": "5"}, {"clip_count": 0}, {"clip_count": True}, {"original_filename": ""},
    {"quality_preset": "best"}, {"surprise": 1}, {"original_filesize": -1},
])
async def test_the_ceiling_refuses_a_body_the_rules_refuse_with_422(ceiling, change) -> None:
    answer = await ceiling.post("/api/v1/process", json=http_hey.JOB | change,
                                headers=_auth(mint_token(SECRET, sub="ann")))
    assert answer.status_code == 422, answer.text


def test_a_missing_hey_is_reported_not_passed_over(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    path, why = http_hey.ensure_hey(install=False)
    assert path is None and "hey" in why


async def test_real_hey_output_parses_into_consistent_figures(database_url: str) -> None:
    hey, why = http_hey.ensure_hey(install=False)
    if hey is None:
        pytest.skip(f"no hey binary to run (Debian package hey; .ci/run installs it): {why}")
    port = free_port()
    env = {"CEILING_DATABASE_URL": database_url, "CEILING_JWT_SECRET": SECRET, "CEILING_POOL_SIZE": "2",
           **{k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME")}}
    argv = [sys.executable, "-m", "uvicorn", "bench.http_ceiling:app", "--port", str(port),
            "--log-level", "warning"]
    conn = await asyncpg.connect(database_url)
    try:
        async with http_hey.served(argv, env, port) as pid:
            server = http_hey.Server(port, pid, http_hey.database_of(database_url))
            figures = await http_hey.hey_round(hey, server, seconds=1, clients=2, probe=conn)
        rows = await conn.fetchval("SELECT count(*) FROM http_ceiling.jobs")
    finally:
        await conn.close()
    assert figures["statuses"] == {"201": figures["responses"]} and figures["errors"] == 0
    assert 0 < figures["responses"] <= rows  # hey may give up on a request the server still completes
    assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"]
    assert figures["requests_per_s"] == pytest.approx(figures["responses"] / figures["total_s"], rel=0.02)
    assert figures["server_cpu_ms_per_request"] > 0 and figures["database_cpu_ms_per_request"] > 0


def test_a_percentile_hey_leaves_out_for_too_few_answers_is_the_slowest() -> None:
    """hey prints p99 only from 100 answers on (p90 from 10): with fewer, the nearest-rank percentile is the slowest."""
    text = ("Summary:\n  Total:\t1.0012 secs\n  Slowest:\t0.0400 secs\n  Fastest:\t0.0100 secs\n"
            "  Requests/sec:\t40.0000\n\nLatency distribution:\n  10%% in 0.0120 secs\n  50%% in 0.0200 secs\n"
            "  90%% in 0.0300 secs\n\nStatus code distribution:\n  [201]\t40 responses\n")
    figures = http_hey.parse_hey(text)
    assert (figures["p50_ms"], figures["p90_ms"], figures["p99_ms"]) == pytest.approx((20.0, 30.0, 40.0))
    assert figures["responses"] == 40 and figures["errors"] == 0
