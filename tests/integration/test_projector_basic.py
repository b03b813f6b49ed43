"""The projector's basic contract: rows, stats, feed, notifications, exactly-once."""

from __future__ import annotations

import json

import asyncpg
import pytest
from structlog.testing import capture_logs

from listeners import BatchNotice, ProjectionWatcher, Projector, parse_notice, wait_for_projection
from store import EventStore, connect, prepare_event
from tests.support.factories import create_data, create_job
from tests.support.projections import assert_read_model_is_fold
from tests.support.waiting import eventually


async def test_lifecycle_is_projected(pool, store: EventStore, make_projector) -> None:
    projector: Projector = make_projector()
    job = await create_job(store)
    await store.append(prepare_event("start", {"worker_id": "w1"}, job_id=job.job_id))
    await store.append(prepare_event("progress", {"percent": 40, "clips_done": 2}, job_id=job.job_id, attempt=1))
    done = await store.append(prepare_event("complete", {"output_paths": ["/o/1.mp4"], "processing_time": 12.5},
                                            job_id=job.job_id, attempt=1))
    result = await projector.run_once()
    assert result.leader and result.events == 4 and result.cursor == done.cursor
    row = await pool.fetchrow("SELECT * FROM vjm.jobs WHERE job_id = $1", job.job_id)
    assert (row["status"], row["version"], row["worker_id"], row["output_paths"]) == ("completed", 4, "w1", ["/o/1.mp4"])
    assert (row["processing_time"], row["progress_percent"], row["clips_done"]) == (12.5, 100.0, 2)
    assert row["completed_at"] == done.occurred_at and row["last_position"] == done.position
    stats = await pool.fetchrow("SELECT * FROM vjm.job_stats WHERE scope = 'user' AND scope_id = 'user-123'")
    assert (stats["total_jobs"], stats["completed_jobs"], stats["average_processing_time"]) == (1, 1, 12.5)
    assert (await projector.run_once()).events == 0
    await assert_read_model_is_fold(projector.config.database_url)


async def _collect(database_url: str) -> tuple[asyncpg.Connection, list[str]]:
    conn = await connect(database_url)
    received: list[str] = []
    await conn.add_listener("vjm_jobs", lambda *args: received.append(args[3]))
    return conn, received


async def _wait_notifications(conn: asyncpg.Connection, received: list[str], count: int) -> None:
    async def arrived() -> bool:
        await conn.execute("SELECT 1")  # notifications that arrived are dispatched before the reply
        return len(received) >= count
    await eventually(arrived)


@pytest.fixture
async def team(pool) -> str:
    """A team the database issued (team ids are never chosen by callers)."""
    return str(await pool.fetchval("SELECT team_id FROM vjm.create_team('studio', 'alice')"))


async def test_small_batch_notifies_per_job_with_ids_and_states_only(database_url: str, store: EventStore,
                                                                     make_projector, team: str) -> None:
    listener, received = await _collect(database_url)
    try:
        job = await create_job(store, original_filename="secret-plans.mp4", team_id=team)
        await store.append(prepare_event("start", {"worker_id": "w1"}, job_id=job.job_id))
        await store.append(prepare_event("fail", {"error": "secret error text"}, job_id=job.job_id, attempt=1))
        result = await make_projector().run_once()
        await _wait_notifications(listener, received, result.notifications)
    finally:
        await listener.close()
    assert result.notifications == 1 and len(received) == 1  # one per job, not one per event
    payload = json.loads(received[0])
    assert {"position", "job_id", "status", "user_id", "team_id"} <= set(payload)
    assert (payload["job_id"], payload["status"], payload["team_id"]) == (str(job.job_id), "failed", team)
    assert payload["cursor"] == list(result.cursor)
    assert "secret" not in received[0]


async def test_burst_sends_one_summary_per_batch(database_url: str, pool, store: EventStore, make_projector) -> None:
    listener, received = await _collect(database_url)
    try:
        bulk = getattr(store, "append_creates", None) or store.append_many  # renamed in the core branch
        await bulk([prepare_event("create", create_data(), user_id=f"u{i % 7}") for i in range(2000)])
        result = await make_projector(batch_size=500).run_once()
        await _wait_notifications(listener, received, result.notifications)
    finally:
        await listener.close()
    assert result.events == 2000 and result.batches == 4
    assert len(received) == result.notifications == 4
    notices = [parse_notice(p) for p in received]
    assert all(isinstance(n, BatchNotice) and len(p) < 8000 for n, p in zip(notices, received, strict=True))
    assert [n.seq_to for n in notices] == [500, 1000, 1500, 2000]
    assert notices[-1].cursor == result.cursor


async def test_delete_removes_the_row_but_keeps_history(pool, store: EventStore, make_projector, team: str) -> None:
    projector = make_projector()
    job = await create_job(store, team_id=team)
    await projector.run_once()
    assert await pool.fetchval("SELECT total_jobs FROM vjm.job_stats WHERE scope = 'team'") == 1
    await store.append(prepare_event("delete", {}, job_id=job.job_id))
    await projector.run_once()
    assert await pool.fetchval("SELECT count(*) FROM vjm.jobs") == 0
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_stats") == 0  # empty scopes are dropped
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE job_id = $1", job.job_id) == 2
    assert await pool.fetchval("SELECT status FROM vjm.job_changes ORDER BY seq DESC LIMIT 1") == "deleted"


async def test_open_transaction_holding_the_horizon_is_reported(database_url: str, store: EventStore,
                                                               make_projector) -> None:
    projector: Projector = make_projector(horizon_warn_after=0)
    idle = await connect(database_url)
    try:
        tx = idle.transaction()
        await tx.start()
        await EventStore(idle).append(prepare_event("create", create_data(), user_id="idle"))
        await create_job(store)
        await projector.run_once()
        with capture_logs() as logs:
            lag = await projector.lag()
        assert (lag.events_behind, lag.held_events, lag.blocking_pid) == (1, 1, idle.get_server_pid())
        assert lag.seconds_behind >= 0
        assert any(entry["event"] == "projection_horizon_held" for entry in logs)
        await tx.commit()
    finally:
        await idle.close()
    await projector.run_once()
    lag = await projector.lag()
    assert (lag.events_behind, lag.held_events, lag.seconds_behind) == (0, 0, 0)


async def test_read_your_writes(database_url: str, store: EventStore, pool, make_projector) -> None:
    async with ProjectionWatcher(database_url, poll_interval=30) as watcher:
        job = await create_job(store)
        assert await watcher.wait_for(job.cursor, timeout=0.2) is False  # bounded: nobody projects
        projector = make_projector(poll_interval=30)
        await projector.start()
        event = await store.append(prepare_event("start", {"worker_id": "w9"}, job_id=job.job_id))
        assert await watcher.wait_for(event.cursor, timeout=10)
        assert await pool.fetchval("SELECT worker_id FROM vjm.jobs WHERE job_id = $1", job.job_id) == "w9"
    assert await wait_for_projection(database_url, event.cursor, 1)
