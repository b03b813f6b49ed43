"""Live subscriptions: resumable by change-feed seq, every change once, in order."""

from __future__ import annotations

import asyncio

from listeners import JobChangeSubscription, Projector, subscribe_job_changes
from store import EventStore
from tests.support.waiting import eventually


async def _feed(pool) -> list[tuple]:
    return [tuple(r) for r in await pool.fetch("SELECT seq, job_id, status, version FROM vjm.job_changes ORDER BY seq")]


async def _read_until(subscription: JobChangeSubscription, seq: int, seen: list) -> None:
    async with asyncio.timeout(15):
        async for change in subscription:
            seen.append((change.seq, change.job_id, change.status, change.version))
            if change.seq >= seq:
                return


async def _change_seq(pool) -> int:
    return await pool.fetchval("SELECT change_seq FROM vjm.projection_checkpoints WHERE name = 'main'")


async def _wait_projected(pool, projector: Projector, expected_events: int) -> None:
    async def projected() -> bool:
        return await pool.fetchval("SELECT events FROM vjm.projection_checkpoints WHERE name = 'main'") \
            >= expected_events
    await eventually(projected, within=15)


async def test_subscriber_resumes_without_gaps_or_duplicates(database_url: str, pool, store: EventStore,
                                                             workload, make_projector) -> None:
    projector = make_projector(batch_size=9, poll_interval=0.05)
    await projector.start()
    seen: list = []
    first = subscribe_job_changes(database_url, after=0, poll_interval=5)
    reader = asyncio.create_task(_read_until(first, 10**9, seen))
    events = await workload(jobs=20, seed=21)
    await _wait_projected(pool, projector, len(events))
    target = await _change_seq(pool)
    await eventually(lambda: bool(seen) and seen[-1][0] >= target, within=15)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await first.close()
    resume_after = seen[-1][0]
    # Offline while more happens; then resume from the last seq seen.
    events += await workload(jobs=20, seed=22)
    await _wait_projected(pool, projector, len(events))
    second = subscribe_job_changes(database_url, after=resume_after, poll_interval=5)
    await _read_until(second, await _change_seq(pool), seen)
    await second.close()
    assert seen == await _feed(pool)
    assert [s[0] for s in seen] == list(range(1, len(seen) + 1))


async def test_subscriber_survives_a_killed_connection(database_url: str, pool, workload, make_projector) -> None:
    projector = make_projector(poll_interval=0.05)
    await projector.start()
    subscription = JobChangeSubscription(database_url, poll_interval=5)
    seen: list = []
    events = await workload(jobs=5, seed=31)
    await _wait_projected(pool, projector, len(events))
    await _read_until(subscription, await _change_seq(pool), seen)
    pid = subscription._listening.connection.get_server_pid()
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
    events += await workload(jobs=5, seed=32)
    await _wait_projected(pool, projector, len(events))
    await _read_until(subscription, await _change_seq(pool), seen)
    await subscription.close()
    assert seen == await _feed(pool)
    statuses = {job_id: status for _, job_id, status, _ in seen}
    live = {r["job_id"]: r["status"] for r in await pool.fetch("SELECT job_id, status FROM vjm.jobs")}
    assert {j: s for j, s in statuses.items() if s != "deleted"} == live
