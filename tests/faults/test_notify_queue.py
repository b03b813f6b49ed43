"""Notification queue pressure (issue 9, part 5): a listener that never reads.

PostgreSQL keeps every notification in one cluster-wide queue until *every*
listening backend has read past it; a backend reads only when it is idle outside
a transaction. asyncpg reads eagerly, so "a listener that never reads" is a
backend that LISTENs on vjm_events and vjm_jobs and then sits in an open
transaction (without a transaction id, so it does not hold the projection
horizon). The test runs on its own embedded server so that
`pg_notification_queue_usage()` shows only this workload; what it shows is
recorded in tests/faults/README.md.
"""

from __future__ import annotations

import asyncpg
import pytest

from listeners import Projector, ProjectorConfig
from store.projections import verify_projections
from tests.support.factories import create_data
from tests.support.fault_sizes import scaled
from tests.support.notifications import NotificationCounter
from tests.support.projections import log_and_checkpoint
from tests.support.waiting import eventually
from videojobs import Settings
from videojobs import connect as connect_manager


async def _usage(url: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT pg_notification_queue_usage()")
    finally:
        await conn.close()


@pytest.mark.slow
async def test_listener_that_never_reads(own_server, own_database: str) -> None:
    url, rounds, per_round = own_database, 5, scaled(400)
    stalled = await asyncpg.connect(url)
    await stalled.execute("LISTEN vjm_events; LISTEN vjm_jobs")
    received: list[str] = []
    await stalled.add_listener("vjm_jobs", lambda *args: received.append(args[-1]))
    await stalled.add_listener("vjm_events", lambda *args: received.append(args[-1]))
    tx = stalled.transaction()
    await tx.start()
    await stalled.fetchval("SELECT 1")  # in a transaction, no xid: it reads no notification from now on
    usage = [await _usage(url)]
    projector = Projector(ProjectorConfig(database_url=url, poll_interval=0.1, batch_size=200))
    await projector.start()
    async with connect_manager(settings=Settings(database_url=url), listeners=False) as manager, \
            NotificationCounter(url, ("vjm_events", "vjm_jobs")) as healthy:
        written = 0
        for _ in range(rounds):
            for _ in range(per_round // 2):
                job = await manager.create_job(user_id="u", **create_data())
                await manager.start_processing(job.job_id, "w")
                written += 2
            usage.append(await _usage(url))
        total = await _wait_all_projected(url, written)
        assert usage[-1] > usage[0] and usage == sorted(usage), f"the queue only grows while nobody reads: {usage}"
        assert received == [], "the stalled listener read nothing"
        assert healthy.count("vjm_events") == written  # other listeners are unaffected
        verify = await verify_projections(url)
        assert verify.ok and verify.events == total == written, verify.differences[:3]

        await tx.commit()  # the stalled backend goes idle and reads everything it was sent
        expected = healthy.count("vjm_events") + healthy.count("vjm_jobs")
        await eventually(lambda: len(received) >= expected, 30, "the stalled listener caught up")
        await eventually(lambda: _drained(url), 30, "the queue is truncated")
        after = await _usage(url)
    await projector.stop()
    await stalled.close()
    print(f"pg_notification_queue_usage: start={usage[0]:.3g} rounds={[f'{u:.3g}' for u in usage[1:]]} "
          f"after={after:.3g}; {written} appends, {expected} notifications")


async def _wait_all_projected(url: str, written: int) -> int:
    async def done() -> bool:
        total, applied, _ = await log_and_checkpoint(url)
        return total == applied == written
    await eventually(done, 30, "the projector applied every event")
    return written


async def _drained(url: str) -> bool:
    """The queue tail has advanced past everything (the last reader truncates it)."""
    return await _usage(url) == 0
