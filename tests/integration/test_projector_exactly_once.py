"""Nothing skipped, nothing twice (docs/ARCHITECTURE.md, invariant 4): late commits, rollbacks, races, crashes, failover."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from listeners import Projector
from store import EventStore, connect, prepare_event
from tests.support.factories import create_data, create_job
from tests.support.projections import assert_read_model_is_fold, wait_caught_up
from tests.support.waiting import eventually


async def _checkpoint(pool) -> asyncpg.Record:
    return await pool.fetchrow("SELECT xact_id, position, events, change_seq FROM vjm.projection_checkpoints "
                               "WHERE name = 'main'")


async def _wait_for_backend_state(pool, pid: int, wait_event_type: str) -> None:
    async def waiting() -> bool:
        return await pool.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid) \
            == wait_event_type
    await eventually(waiting)


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_out_of_order_commit(database_url: str, pool, store: EventStore, make_projector,
                                   outcome: str) -> None:
    projector: Projector = make_projector()
    early = await connect(database_url)
    try:
        tx = early.transaction()
        await tx.start()
        held = await EventStore(early).append(prepare_event("create", create_data(), user_id="early"))
        late = await create_job(store, user_id="late")  # commits first, but began after A took its xid
        assert (await projector.run_once()).events == 0
        checkpoint = await _checkpoint(pool)
        assert checkpoint["xact_id"] < held.xact_id, "the checkpoint passed an open transaction"
        assert await pool.fetchval("SELECT count(*) FROM vjm.jobs") == 0
        await (tx.commit() if outcome == "commit" else tx.rollback())
    finally:
        await early.close()
    result = await projector.run_once()
    expected = {late.job_id} | ({held.job_id} if outcome == "commit" else set())
    assert result.events == len(expected)
    assert {r[0] for r in await pool.fetch("SELECT job_id FROM vjm.jobs")} == expected
    assert (await _checkpoint(pool))["events"] == len(expected)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_changes") == len(expected)
    assert (await projector.run_once()).events == 0
    await assert_read_model_is_fold(database_url)


async def _writer(database_url: str, seed: int, ops: int, committed: list[int]) -> None:
    """Random transactions of 1-3 appends with random delays inside; about 5% roll back."""
    rng = random.Random(seed)
    conn = await connect(database_url)
    store = EventStore(conn)
    mine: list = []
    try:
        for _ in range(ops):
            tx = conn.transaction()
            await tx.start()
            appended = [await store.append(prepare_event("create", create_data(), user_id=f"writer{seed}"))]
            if mine and rng.random() < 0.6:
                head = await store.read_head(rng.choice(mine))
                trigger = {"queued": "start", "processing": "complete"}.get(head.to_state.value, "update_metadata")
                data = {"output_paths": ["/o.mp4"]} if trigger == "complete" else (
                    {"clip_count": 2} if trigger == "update_metadata" else {})
                appended.append(await store.append(prepare_event(trigger, data, job_id=head.job_id,
                                                                 attempt=head.attempt)))
            await asyncio.sleep(rng.uniform(0, 0.004))  # deliberate jitter: the transaction stays open
            if rng.random() < 0.05:
                await tx.rollback()
                continue
            await tx.commit()
            committed.extend(e.position for e in appended)
            mine.append(appended[0].job_id)
    finally:
        await conn.close()


async def test_concurrent_writers_projected_set_equals_committed_set(database_url: str, pool, make_projector) -> None:
    projector: Projector = make_projector(batch_size=50, poll_interval=0.05)
    await projector.start()
    committed: list[int] = []
    await asyncio.gather(*(_writer(database_url, seed, 40, committed) for seed in range(8)))
    await wait_caught_up(pool)
    stored = {r[0] for r in await pool.fetch("SELECT position FROM vjm.job_events")}
    assert stored == set(committed) and len(committed) == len(set(committed))
    assert (await _checkpoint(pool))["events"] == len(committed)  # each applied exactly once
    versions = await pool.fetch("SELECT j.version, (SELECT count(*) FROM vjm.job_events e WHERE e.job_id = j.job_id) "
                                "FROM vjm.jobs j")
    assert all(v == n for v, n in versions)
    await assert_read_model_is_fold(database_url)


async def _keep_writing(store: EventStore, stop: asyncio.Event, written: list) -> None:
    while not stop.is_set():
        job = await create_job(store)
        written.append(await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id)))
        await asyncio.sleep(0.002)  # deliberate pacing of the load


async def test_listen_backend_killed(database_url: str, pool, store: EventStore, make_projector) -> None:
    # Polling is slowed to 60 s, so only a re-established LISTEN can bring the new events in quickly.
    projector: Projector = make_projector(poll_interval=60)
    await projector.start()
    stop, written = asyncio.Event(), []
    load = asyncio.create_task(_keep_writing(store, stop, written))
    await eventually(lambda: projector.is_leader and len(written) > 20)
    first_pid = projector.backend_pid
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", first_pid)
    await eventually(lambda: projector.is_leader and projector.backend_pid not in (None, first_pid))
    target = len(written) + 20
    await eventually(lambda: len(written) >= target)
    stop.set()
    await load
    await wait_caught_up(pool, within=10)
    assert (await _checkpoint(pool))["events"] == await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    await assert_read_model_is_fold(database_url)


async def test_notify_missing_polling_alone_projects_everything(database_url: str, pool, workload,
                                                                make_projector) -> None:
    projector: Projector = make_projector(listen=False, poll_interval=0.05, batch_size=25)
    await projector.start()
    events = await workload(jobs=40, seed=3)
    await wait_caught_up(pool)
    assert (await _checkpoint(pool))["events"] == len(events)
    await assert_read_model_is_fold(database_url)


async def test_crash_mid_batch(database_url: str, pool, workload, make_projector) -> None:
    events = await workload(jobs=30, seed=5)
    crashing: Projector = make_projector()
    await crashing.run_once()  # leader now; the next batch will be killed half-way
    more = await workload(jobs=10, seed=6)
    blocker = await connect(database_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE vjm.job_stats IN SHARE MODE")  # the batch stops at its stats write
        batch = asyncio.create_task(crashing.run_once())
        await _wait_for_backend_state(pool, crashing.backend_pid, "Lock")
        assert await pool.fetchval("SELECT count(*) FROM vjm.jobs") == len({e.job_id for e in events} - {
            e.job_id for e in events if e.type == "delete"})
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", crashing.backend_pid)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await batch
        await tx.rollback()
    finally:
        await blocker.close()
    assert (await _checkpoint(pool))["events"] == len(events)  # nothing of the killed batch stuck
    restarted: Projector = make_projector()
    result = await restarted.run_once()
    assert result.leader and result.events == len(more)
    await assert_read_model_is_fold(database_url)


async def test_failover_under_load(database_url: str, pool, store: EventStore, make_projector) -> None:
    first: Projector = make_projector(poll_interval=0.05, takeover_interval=0.05, batch_size=20)
    second: Projector = make_projector(poll_interval=0.05, takeover_interval=0.05, batch_size=20)
    await first.start()
    await second.start()
    stop, written = asyncio.Event(), []
    load = asyncio.create_task(_keep_writing(store, stop, written))
    await eventually(lambda: (first.is_leader or second.is_leader) and len(written) >= 20)
    leader, standby = (first, second) if first.is_leader else (second, first)
    assert not standby.is_leader
    await pool.fetchval("SELECT pg_terminate_backend($1)", leader.backend_pid)
    await eventually(lambda: standby.is_leader, within=5)  # takeover within seconds
    target = len(written) + 20
    await eventually(lambda: len(written) >= target)
    stop.set()
    await load
    await wait_caught_up(pool)
    assert not (first.is_leader and second.is_leader)
    assert (await _checkpoint(pool))["events"] == await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    await assert_read_model_is_fold(database_url)


async def test_two_appliers_at_once_never_apply_twice(database_url: str, pool, workload) -> None:
    """Even without the advisory lock, the checkpoint row lock makes concurrent batches harmless."""
    from listeners import project_batch
    events = await workload(jobs=30, seed=9)
    conns = [await connect(database_url) for _ in range(3)]
    try:
        async def drain(conn) -> int:
            applied = 0
            while (batch := await project_batch(conn, "main", batch_size=7, per_job_limit=10)).events:
                applied += batch.events
            return applied
        counts = await asyncio.gather(*(drain(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()
    assert sum(counts) == len(events)
    assert (await _checkpoint(pool))["events"] == len(events)
    await assert_read_model_is_fold(database_url)


async def test_open_transaction_in_another_database_does_not_stall(empty_database_url: str, pool,
                                                                   store: EventStore, make_projector) -> None:
    other = await connect(empty_database_url)
    try:
        tx = other.transaction()
        await tx.start()
        await other.fetchval("SELECT pg_current_xact_id()")  # holds the cluster-wide xmin back
        job = await create_job(store)
        result = await make_projector().run_once()
        assert result.events == 1 and result.cursor == job.cursor
        await tx.rollback()
    finally:
        await other.close()
