"""An event the projector cannot apply stops it loudly at exactly that event; an admin's void gets it past.

Issue 15, finding 1. Real Postgres, real projectors (the manager's in-process loop, and
`run_once`), the HTTP app, the CLI in a subprocess.

How the poison gets into the log: the guard now refuses such payloads for every caller
(vjm.payload_ok), and no role may write vjm.job_events but the guard. `_plant` first tries
vjm.append_event as a superuser (an admin); when SQL refuses, it INSERTs the row directly as
the superuser, with the version, states and hash the guard would have computed. That
simulates an event stored before the validator existed (or let through by a bug): exactly
what the projector must survive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest

from statemachine import AccessDenied, ValidationError
from store import EventStore
from store.faults import get_fault, void_event
from store.projections import rebuild_projections, verify_projections
from tests.support.factories import create_data, create_job
from tests.support.projections import assert_read_model_is_fold, wait_caught_up
from tests.support.waiting import eventually

OVERFLOW = {"clip_count": 1e30}  # the fold takes it; the int4 column (the driver) cannot


async def _plant(conn: asyncpg.Connection, job_id: uuid.UUID, type_: str, data: dict, user_id: str = "alice") -> int:
    """Store an event the fold cannot apply; its position. See the module docstring."""
    payload = json.dumps(data)
    try:
        async with conn.transaction():
            if type_ == "create":
                return await conn.fetchval("SELECT position FROM vjm.append_event($1, 'create', $2::text::jsonb,"
                                           " NULL, NULL, NULL, $3)", job_id, payload, user_id)
            return await conn.fetchval("SELECT position FROM vjm.append_event($1, $2, $3::text::jsonb)",
                                       job_id, type_, payload)
    except asyncpg.PostgresError:
        pass  # the validator refuses it: simulate an event stored before the fix
    if type_ == "create":
        position = await conn.fetchval(
            "WITH t AS (SELECT clock_timestamp() AS at)"
            " INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left, data,"
            "                             actor, user_id, occurred_at, hash)"
            " SELECT $1, 1, 'create', NULL, 'queued', 0, 3, $2::text::jsonb, 'pre-fix', $3, t.at,"
            "        vjm.event_hash(NULL, $1, 1, 'create', NULL, 'queued', 0, $2::text::jsonb, 'pre-fix', $3, NULL, t.at)"
            "   FROM t RETURNING position", job_id, payload, user_id)
        await conn.execute("INSERT INTO vjm.run_queue (job_id, created_at, platform_target, max_attempts, queued,"
                           "                           user_id, team_id, fair_key, turn)"
                           " SELECT job_id, occurred_at, NULL, 3, true, user_id, team_id,"
                           "        vjm.fair_key(user_id, team_id), vjm.first_turn(0::smallint, vjm.fair_key(user_id, team_id))"
                           " FROM vjm.job_events WHERE position = $1", position)
        return position
    return await conn.fetchval(
        "WITH h AS (SELECT * FROM vjm.job_events WHERE job_id = $1 ORDER BY version DESC LIMIT 1),"
        "     t AS (SELECT clock_timestamp() AS at)"
        " INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left, data,"
        "                             actor, user_id, team_id, occurred_at, prev_hash, hash)"
        " SELECT h.job_id, h.version + 1, $2, h.to_state, h.to_state, h.attempt, h.attempts_left, $3::text::jsonb,"
        "        'pre-fix', h.user_id, h.team_id, t.at, h.hash,"
        "        vjm.event_hash(h.hash, h.job_id, h.version + 1, $2, h.to_state, h.to_state, h.attempt,"
        "                       $3::text::jsonb, 'pre-fix', h.user_id, h.team_id, t.at)"
        "   FROM h, t RETURNING position", job_id, type_, payload)


async def _checkpoint_position(pool) -> int:
    return await pool.fetchval("SELECT position FROM vjm.projection_checkpoints WHERE name = 'main'")


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VJM_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "videojobs.cli.main", "projections", *args,
                           "--database-url", database_url], capture_output=True, text=True, env=env, timeout=60)


async def test_a_poison_event_stops_the_projector_at_it_loudly_and_a_void_gets_it_past(
        database_url: str, pool, manager_with_listeners) -> None:
    from tests.support.http_app import FAST, http_settings
    from videojobs.http import create_app
    from videojobs.http.health import check_health

    store = EventStore(pool)
    a, b = await create_job(store, user_id="alice"), await create_job(store, user_id="bob")
    await wait_caught_up(pool)
    later_job = uuid.uuid4()
    # One transaction: a good event, the poison, a good event; the projector reads them as one batch.
    async with pool.acquire() as conn, conn.transaction():
        good = await conn.fetchval("SELECT position FROM vjm.append_event($1, 'update_metadata', $2::text::jsonb)",
                                   b.job_id, json.dumps({"clip_count": 4}))
        poison = await _plant(conn, a.job_id, "update_metadata", OVERFLOW)
        await conn.fetchval("SELECT position FROM vjm.append_event($1, 'create', $2::text::jsonb, NULL, NULL, NULL,"
                            " 'carol')", later_job, json.dumps(create_data()))
    stopped_at = time.monotonic()

    async def stopped() -> bool:
        return await get_fault(pool, "main") is not None
    await eventually(stopped, within=15)
    fault = await get_fault(pool, "main")
    assert (fault.position, fault.job_id, fault.type) == (poison, a.job_id, "update_metadata")
    assert "clip_count" in fault.error or "int" in fault.error.lower(), fault.error
    # Exactly there: the good event before it is projected, nothing after it is.
    assert await _checkpoint_position(pool) == good
    assert await pool.fetchval("SELECT clip_count FROM vjm.jobs WHERE job_id = $1", b.job_id) == 4
    assert await pool.fetchval("SELECT count(*) FROM vjm.jobs WHERE job_id = $1", later_job) == 0

    # Loudly: /healthz, the metric, `vjm projections status`.
    report = await check_health(manager_with_listeners, 900.0)
    assert report.status == "degraded" and report.projector.status == "degraded"
    assert report.projector.stopped["position"] == poison and str(poison) in report.projector.detail
    app = create_app(manager_with_listeners, settings=http_settings(database_url), options=FAST)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test") as client:
        health = (await client.get("/healthz")).json()
        assert health["status"] == "degraded" and health["projector"]["stopped"]["position"] == poison
        metrics = (await client.get("/metrics")).text
        assert "vjm_projector_stopped 1.0" in metrics
        assert f"vjm_projector_stopped_position {float(poison)}" in metrics
        status = _cli(database_url, "status", "--json")
        assert status.returncode == 1, status.stderr
        assert json.loads(status.stdout)["fault"]["position"] == poison

        # Not a tight loop: one retry of the one event per poll interval (1 s).
        await eventually(lambda: time.monotonic() - stopped_at > 1.5, within=5)
        attempts = (await get_fault(pool, "main")).attempts
        assert 1 <= attempts <= (time.monotonic() - stopped_at) / 1.0 + 3, attempts

        # Who may void: not an end user; not an event already projected.
        with pytest.raises(AccessDenied):
            await manager_with_listeners.as_user("alice").maintenance.void_event(poison, "mine")
        with pytest.raises(ValidationError):
            await manager_with_listeners.maintenance.void_event(good, "already projected")
        void = await manager_with_listeners.maintenance.void_event(poison, "clip_count overflows int4 (stored before the validator)")
        assert (void.type, void.job_id, void.data["position"]) == ("void", a.job_id, poison)

        async def resumed() -> bool:
            return await get_fault(pool, "main") is None
        await eventually(resumed, within=15)
        await wait_caught_up(pool)
        row = await pool.fetchrow("SELECT clip_count, version, last_position FROM vjm.jobs WHERE job_id = $1",
                                  a.job_id)
        assert (row["clip_count"], row["version"], row["last_position"]) == (a.data["clip_count"], void.version,
                                                                             void.position)
        assert await pool.fetchval("SELECT count(*) FROM vjm.jobs WHERE job_id = $1", later_job) == 1
        health = (await client.get("/healthz")).json()
        assert "stopped" not in health["projector"]
        metrics = (await client.get("/metrics")).text
        assert "vjm_projector_stopped 0.0" in metrics and "vjm_projector_stopped_position 0.0" in metrics
    status = _cli(database_url, "status")
    assert status.returncode == 0 and "projecting" in status.stdout, status.stdout + status.stderr

    # The history keeps both; verify agrees; a rebuild from the log skips the voided event too.
    types = [r["type"] for r in await pool.fetch("SELECT type FROM vjm.job_events WHERE job_id = $1"
                                                 " ORDER BY version", a.job_id)]
    assert types[-2:] == ["update_metadata", "void"]
    await assert_read_model_is_fold(database_url)
    before = dict(await pool.fetchrow("SELECT * FROM vjm.jobs WHERE job_id = $1", a.job_id))
    await pool.execute("DELETE FROM vjm.jobs")  # damage: the rebuild must make every row again from the log
    await rebuild_projections(database_url)
    assert dict(await pool.fetchrow("SELECT * FROM vjm.jobs WHERE job_id = $1", a.job_id)) == before
    await assert_read_model_is_fold(database_url)


async def test_a_voided_create_hides_the_job_and_the_projector_goes_on(database_url: str, pool, make_projector) -> None:
    store = EventStore(pool)
    first = await create_job(store, user_id="alice")
    bad_job = uuid.uuid4()
    async with pool.acquire() as conn:
        poison = await _plant(conn, bad_job, "create", {})  # the fold raises KeyError 'original_filename'
    after = await create_job(store, user_id="bob")
    projector = make_projector(listen=False)

    result = await projector.run_once()
    assert result.fault is not None and result.fault.position == poison
    assert "original_filename" in result.fault.error
    assert await _checkpoint_position(pool) == first.position  # the event before it is projected
    again = await projector.run_once()  # a retry: the same stop, counted, not a new one
    assert again.fault.position == poison and again.fault.attempts == 2 and again.events == 0
    assert (await verify_projections(database_url)).ok  # verify runs (and agrees) while it is stopped

    void = await void_event(pool, poison, "empty create stored before the validator")
    assert void.job_id == bad_job
    result = await projector.run_once()
    assert result.fault is None and projector.fault is None
    assert await get_fault(pool, "main") is None
    jobs = {r["job_id"] for r in await pool.fetch("SELECT job_id FROM vjm.jobs")}
    assert jobs == {first.job_id, after.job_id}  # the voided create's job is not projected
    with pytest.raises(asyncpg.PostgresError, match="voided already"):
        await void_event(pool, poison, "twice")
    await pool.execute("DELETE FROM vjm.jobs")
    await rebuild_projections(database_url)
    assert {r["job_id"] for r in await pool.fetch("SELECT job_id FROM vjm.jobs")} == jobs
    await assert_read_model_is_fold(database_url)
