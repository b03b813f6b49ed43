"""The doorbell rings only while someone waits for it (sql/schema/050_locks_and_doorbell.sql).

Appends ring vjm_events only when a session holds the doorbell lock; the projector
holds it only while it sleeps, and must never sleep through an event that committed
without ringing. The projectors here poll once a minute, so only the doorbell or the
busy poll can make them project within the tests' deadlines.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
from structlog.testing import capture_logs

from listeners import Projector
from store import EventStore, connect, prepare_event
from store.identity import connect_as
from store.projections import doorbell_holders
from tests.support.doorbell import Doorbells, listening
from tests.support.factories import create_data, create_job
from tests.support.waiting import eventually

ARM = "SELECT vjm.arm_doorbell($1::xid8, $2::bigint)"


async def _holds_doorbell(pool, pid: int) -> bool:
    """Whether session `pid` holds the doorbell lock exclusively (a listener that armed or holds it)."""
    return any(h["pid"] == pid and h["mode"] == "ExclusiveLock" and h["granted"] for h in await doorbell_holders(pool))


async def _rang_before_marker(bells: Doorbells, pool) -> list[str]:
    """Doorbells that arrived before a marker notified now (notifications arrive in commit order)."""
    await pool.execute("SELECT pg_notify('vjm_events', 'marker')")
    rang = []
    while (payload := await asyncio.wait_for(bells.received.get(), 10)) != "marker":
        rang.append(payload)
    return rang


async def test_appends_ring_only_while_the_doorbell_is_held(database_url: str, pool, store: EventStore) -> None:
    async with listening(database_url, hold=False) as bells:
        job = await create_job(store)
        await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id))
        assert await _rang_before_marker(bells, pool) == []  # listening alone asks for nothing

        await bells.conn.execute("SELECT vjm.hold_doorbell()")
        progress = await store.append(prepare_event("progress", {"percent": 10}, job_id=job.job_id, attempt=1))
        assert await bells.next() == {"position": progress.position, "count": 1}

        assert await bells.conn.fetchval("SELECT vjm.release_doorbell()") is True
        await store.append(prepare_event("progress", {"percent": 20}, job_id=job.job_id, attempt=1))
        assert await _rang_before_marker(bells, pool) == []


async def test_arm_doorbell_reports_busy_pending_held_and_armed(database_url: str, pool, store: EventStore) -> None:
    first = await create_job(store)
    projector = await connect_as(database_url, role="vjm_projector")
    writer, bystander = await connect(database_url), await connect(database_url)
    try:
        async with listening(database_url, hold=False) as bells:
            tx = writer.transaction()
            await tx.start()
            in_flight = await EventStore(writer).append(prepare_event("create", create_data(), user_id="u"))
            # The writer looked for a waiter and holds the doorbell shared until it commits.
            assert await projector.fetchval(ARM, *first.cursor) == "busy"
            await tx.commit()
            assert await projector.fetchval(ARM, *first.cursor) == "pending"  # committed after the cursor
            assert not await _holds_doorbell(pool, projector.get_server_pid())

            # An older transaction still open holds the horizon: the newer event waits above it.
            held = bystander.transaction()
            await held.start()
            await bystander.fetchval("SELECT pg_current_xact_id()")
            above = await create_job(store)
            assert await projector.fetchval(ARM, *in_flight.cursor) == "held"
            await held.rollback()
            assert await projector.fetchval(ARM, *in_flight.cursor) == "pending"

            assert await projector.fetchval(ARM, *above.cursor) == "armed"
            assert await _holds_doorbell(pool, projector.get_server_pid())
            rung = await create_job(store)
            assert await bells.next() == {"position": rung.position, "count": 1}  # it waits, so appends ring
            assert await projector.fetchval("SELECT vjm.release_doorbell()") is True
            assert not await _holds_doorbell(pool, projector.get_server_pid())
    finally:
        for conn in (writer, bystander, projector):
            await conn.close()


async def test_arm_doorbell_looks_at_the_log_after_taking_the_lock(database_url: str, pool,
                                                                    store: EventStore) -> None:
    """A commit that lands while the arming statement is already running must be seen."""
    first = await create_job(store)
    projector = await connect_as(database_url, role="vjm_projector")
    gate = await connect(database_url)
    try:
        await gate.execute("SELECT pg_advisory_lock(42)")
        # The statement takes its snapshot, then waits on the gate before it calls arm_doorbell.
        arming = asyncio.create_task(projector.fetchval(
            "WITH gate AS MATERIALIZED (SELECT pg_advisory_lock_shared(42)) "
            "SELECT vjm.arm_doorbell($1::xid8, $2::bigint) FROM gate", *first.cursor))
        await eventually(lambda: pool.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", projector.get_server_pid()))
        await create_job(store)  # commits while nobody holds the doorbell: it does not ring
        await gate.execute("SELECT pg_advisory_unlock(42)")
        assert await arming == "pending"
        assert not await _holds_doorbell(pool, projector.get_server_pid())
    finally:
        await gate.close()
        await projector.close()


async def test_arm_doorbell_refuses_a_snapshot_taken_before_the_lock(database_url: str, pool,
                                                                     store: EventStore) -> None:
    first = await create_job(store)
    projector = await connect_as(database_url, role="vjm_projector")
    try:
        await projector.execute("SET default_transaction_isolation = 'repeatable read'")
        with pytest.raises(asyncpg.PostgresError, match="READ COMMITTED"):
            await projector.fetchval(ARM, *first.cursor)
        assert not await _holds_doorbell(pool, projector.get_server_pid())
    finally:
        await projector.close()


async def test_a_failed_arm_leaves_no_lock_behind(database_url: str, pool, store: EventStore) -> None:
    first = await create_job(store)
    projector = await connect_as(database_url, role="vjm_projector")
    blocker = await connect(database_url)
    try:
        await projector.execute("SET lock_timeout = '100ms'")
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE vjm.job_events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(asyncpg.LockNotAvailableError):  # the look at the log fails, lock in hand
                await projector.fetchval(ARM, *first.cursor)
        assert not await _holds_doorbell(pool, projector.get_server_pid())
        assert await projector.fetchval(ARM, *first.cursor) == "armed"  # and arming works again
    finally:
        await blocker.close()
        await projector.close()


async def _armed(pool, projector: Projector) -> bool:
    return projector.backend_pid is not None and await _holds_doorbell(pool, projector.backend_pid)


async def _projected(pool, job_ids) -> bool:
    return await pool.fetchval("SELECT count(*) FROM vjm.jobs WHERE job_id = ANY($1)", list(job_ids)) == len(job_ids)


async def test_a_sleeping_projector_is_woken_by_the_doorbell(pool, store: EventStore, make_projector) -> None:
    projector: Projector = make_projector(poll_interval=60)
    await projector.start()
    await eventually(lambda: _armed(pool, projector))
    job = await create_job(store)
    await eventually(lambda: _projected(pool, [job.job_id]), within=5)


async def test_appends_in_flight_when_the_projector_goes_to_sleep_are_projected(
        database_url: str, pool, store: EventStore, make_projector) -> None:
    writer = await connect(database_url)
    try:
        tx = writer.transaction()
        await tx.start()
        late = await EventStore(writer).append(prepare_event("create", create_data(), user_id="late"))
        projector: Projector = make_projector(poll_interval=60)
        await projector.start()

        async def tried_to_arm() -> bool:
            return projector.backend_pid is not None and await pool.fetchval(
                "SELECT query LIKE '%arm_doorbell%' FROM pg_stat_activity WHERE pid = $1", projector.backend_pid)
        await eventually(tried_to_arm)
        assert not await _armed(pool, projector)  # the writer holds the doorbell shared: the projector polls
        await tx.commit()  # no doorbell rings for this append: nobody was waiting when it looked
    finally:
        await writer.close()
    await eventually(lambda: _projected(pool, [late.job_id]), within=5)


async def test_racing_writers_never_leave_an_event_unprojected(database_url: str, pool, make_projector) -> None:
    projector: Projector = make_projector(poll_interval=60)
    await projector.start()
    writers = [await connect(database_url) for _ in range(6)]
    rng = random.Random(17)
    created: list = []

    async def write(conn: asyncpg.Connection) -> None:
        store = EventStore(conn)
        for _ in range(200):
            job = await store.append(prepare_event("create", create_data(), user_id="racer"))
            created.append(job.job_id)
            if rng.random() < 0.5:
                await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id))
            # Gaps of 0-4 ms let the projector catch up and arm between appends: the race under test.
            await asyncio.sleep(rng.uniform(0, 0.004))  # deliberate pacing of the load
    try:
        await asyncio.gather(*(write(conn) for conn in writers))
    finally:
        for conn in writers:
            await conn.close()
    await eventually(lambda: _projected(pool, created), within=10)
    last = await pool.fetchrow("SELECT xact_id, position FROM vjm.job_events ORDER BY xact_id DESC, position DESC "
                               "LIMIT 1")
    await eventually(lambda: projector.cursor == (last["xact_id"], last["position"]), within=10)


async def test_every_append_function_rings_through_the_doorbell(pool) -> None:
    async def functions(pattern: str) -> set[str]:
        rows = await pool.fetch("SELECT proname FROM pg_proc WHERE pronamespace = 'vjm'::regnamespace "
                                "AND prosrc ~* $1", pattern)
        return {r["proname"] for r in rows}
    # Only the doorbell itself notifies vjm_events, however it is spelled.
    assert await functions(r"(pg_notify\s*\(\s*'vjm_events'|\mnotify\s+vjm_events)") == {"ring_doorbell"}
    # The guard rings (when its caller asks), and the batch append rings once for its rounds.
    assert await functions(r"vjm\.ring_doorbell\(") == {"guard_append", "append_events"}
    # Every entry point appends through the guard.
    assert {"append_event", "append_events", "append_create_batch", "append_creates", "claim_jobs"} <= await functions(
        r"vjm\.guard_append\(")


async def test_a_session_sitting_on_the_doorbell_costs_latency_not_data(database_url: str, pool,
                                                                        make_projector) -> None:
    squatter = await connect_as(database_url, role=None)  # the least privileged login can take the lock
    try:
        await squatter.execute("SELECT pg_advisory_lock_shared(1986359921, 0)")
        projector: Projector = make_projector(poll_interval=60, horizon_warn_after=0.3)
        with capture_logs() as logs:
            await projector.start()
            job = await create_job(EventStore(pool))  # nobody can arm, so nothing rings: the busy poll finds it
            await eventually(lambda: _projected(pool, [job.job_id]), within=5)
            await eventually(lambda: any(e["event"] == "doorbell_unavailable" for e in logs), within=5)
        warning = next(e for e in logs if e["event"] == "doorbell_unavailable")
        assert squatter.get_server_pid() in [h["pid"] for h in warning["holders"]]
    finally:
        await squatter.close()


async def test_the_projector_arms_under_a_repeatable_read_database_default(pool, make_projector) -> None:
    await pool.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation "
                       "= ''repeatable read''', current_database()); END $$")
    projector: Projector = make_projector(poll_interval=60)
    await projector.start()
    await eventually(lambda: _armed(pool, projector))  # its session pins READ COMMITTED
    job = await create_job(EventStore(pool))
    await eventually(lambda: _projected(pool, [job.job_id]), within=5)
