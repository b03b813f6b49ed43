"""The listeners under the real run-time roles and Row Level Security (sql/schema/010_roles.sql, 090_row_level_security.sql)."""

from __future__ import annotations

import asyncio

from listeners import JobChangeSubscription, Projector, ProjectorConfig
from store import EventStore
from store.projections import rebuild_projections, verify_projections
from tests.support.factories import create_job
from tests.support.waiting import eventually

PROJECTOR = "vjm_projector"


async def test_projector_rebuild_and_verify_run_as_vjm_projector(database_url: str, pool, workload) -> None:
    events = await workload(jobs=15, seed=4)
    projector = Projector(ProjectorConfig(database_url=database_url, role=PROJECTOR, batch_size=10))
    try:
        result = await projector.run_once()
        assert result.leader and result.events == len(events)
        assert (await projector.lag()).events_behind == 0
        who = await projector._listening.connection.fetchval("SELECT current_user")
        assert who == PROJECTOR
    finally:
        await projector.stop()
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_changes") > 0
    assert (await rebuild_projections(database_url, role=PROJECTOR)).events == len(events)
    assert (await verify_projections(database_url, role=PROJECTOR)).ok


async def test_a_user_subscription_sees_only_that_users_jobs(database_url: str, store: EventStore,
                                                             make_projector) -> None:
    mine = [await create_job(store, user_id="alice") for _ in range(3)]
    await create_job(store, user_id="mallory")
    await make_projector().run_once()
    seen = []
    async with JobChangeSubscription(database_url, user_id="alice", poll_interval=0.05) as subscription:
        async def read() -> None:
            async for change in subscription:
                seen.append(change)
        reader = asyncio.create_task(read())
        try:
            await eventually(lambda: len(seen) >= 3)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    assert {c.job_id for c in seen} == {j.job_id for j in mine}
    assert {c.user_id for c in seen} == {"alice"}
