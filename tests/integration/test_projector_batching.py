"""Under a steady stream of appends the projector applies them in batches near its target.

A batch's cost is mostly fixed, so while appends are in flight the projector waits for about
`busy_batch_target` events (listeners.projector_config.next_busy_wait). Each batch is one
transaction that writes the change feed, so the feed's distinct writing transactions count the
batches.
"""

from __future__ import annotations

import asyncio

import asyncpg

from listeners import Projector
from store import EventStore, connect, prepare_event
from tests.support.factories import create_data
from tests.support.waiting import eventually

WRITERS = 8
REPORTS = 120  # progress reports per writer's job, back to back


async def _write(conn: asyncpg.Connection, user_id: str) -> None:
    store = EventStore(conn)
    job = await store.append(prepare_event("create", create_data(), user_id=user_id))
    await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id))
    for i in range(REPORTS):
        await store.append(prepare_event("progress", {"percent": i * 100 / REPORTS}, job_id=job.job_id, attempt=1))


async def _batches_for_a_steady_stream(database_url: str, pool, projector: Projector) -> tuple[int, int]:
    """(events, batches) the projector took for WRITERS writers appending back to back."""
    await projector.start()
    writers = [await connect(database_url) for _ in range(WRITERS)]
    try:
        await asyncio.gather(*(_write(conn, f"writer-{i}") for i, conn in enumerate(writers)))
    finally:
        for conn in writers:
            await conn.close()
    last = await pool.fetchrow("SELECT xact_id, position FROM vjm.job_events ORDER BY xact_id DESC, position DESC "
                               "LIMIT 1")
    await eventually(lambda: projector.cursor == (last["xact_id"], last["position"]), within=15)
    events = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    batches = await pool.fetchval("SELECT count(DISTINCT xmin::text) FROM vjm.job_changes")
    return events, batches


async def test_appends_in_flight_are_projected_in_batches_near_the_target(database_url: str, pool,
                                                                         make_projector) -> None:
    # Polling every 2 ms (a target of 1) gave batches of 26-28 events here, the apply's own time gathering them;
    # the target asks for 100 (122 here), and a wait of up to 500 ms gathers that many down to 200 appends/s.
    projector = make_projector(poll_interval=60, busy_poll_interval=0.002, busy_poll_max=0.5, busy_batch_target=100)
    events, batches = await _batches_for_a_steady_stream(database_url, pool, projector)
    assert events == WRITERS * (REPORTS + 2)
    assert events / batches >= 60, (events, batches)
