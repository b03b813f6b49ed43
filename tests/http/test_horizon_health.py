"""A held-back horizon is reported (issue 15, finding 4): /healthz and /metrics name the pid.

An open transaction that holds a transaction id keeps vjm.projection_horizon() from
passing it: events that commit after it wait, in order, until it ends. /healthz turns
degraded once it has held committed events for HORIZON_DEGRADED_SECONDS, naming the
backend's pid, and /metrics carries the same figures; both clear when it commits.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tests.support.http_app import JOB
from tests.support.tokens import bearer
from videojobs.http.health import HORIZON_DEGRADED_SECONDS


async def _poll(check: Callable[[], Awaitable[Any]], deadline_s: float, what: str) -> Any:
    """Await `check` until it returns something truthy; fail after `deadline_s` seconds."""
    deadline = time.monotonic() + deadline_s
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)  # poll
    return found


def _gauge(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


async def test_healthz_and_metrics_name_the_transaction_that_holds_the_horizon(client, database_url) -> None:
    blocker = await asyncpg.connect(database_url)
    try:
        await blocker.execute("BEGIN")
        await blocker.fetchval("SELECT pg_current_xact_id()")  # an xid: later commits wait behind it
        pid = blocker.get_server_pid()
        created = await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))
        assert created.status_code == 201

        async def held() -> dict | None:
            body = (await client.get("/healthz")).json()
            horizon = body["projector"].get("horizon") or {}
            return body if body["status"] == "degraded" and horizon.get("held") else None
        body = await _poll(held, HORIZON_DEGRADED_SECONDS + 15, "/healthz reports the held horizon")
        horizon = body["projector"]["horizon"]
        assert body["projector"]["status"] == "degraded"
        assert horizon["blocking_pid"] == pid and horizon["held_events"] >= 1
        assert horizon["held_seconds"] >= HORIZON_DEGRADED_SECONDS
        assert f"pid {pid}" in body["projector"]["detail"]
        text = (await client.get("/metrics")).text
        assert _gauge(text, "vjm_projector_horizon_blocking_pid") == pid
        assert _gauge(text, "vjm_projector_horizon_held_events") >= 1
        assert _gauge(text, "vjm_projector_horizon_held_seconds") >= HORIZON_DEGRADED_SECONDS

        await blocker.execute("COMMIT")

        async def cleared() -> bool:
            body = (await client.get("/healthz")).json()
            return body["projector"]["status"] == "ok" and body["projector"].get("horizon") is None
        await _poll(cleared, 15, "/healthz clears after the commit")
        text = (await client.get("/metrics")).text
        assert _gauge(text, "vjm_projector_horizon_blocking_pid") == 0
        assert _gauge(text, "vjm_projector_horizon_held_events") == 0
    finally:
        await blocker.close()
