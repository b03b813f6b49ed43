"""A long-open transaction (issue 9, part 3): the projector reports lag and warns, then skips nothing.

An idle session holds a transaction id in the same database (the classic "idle in
transaction" client). Events that commit after it began sort after its xid in
commit-safe order, so the projector must hold them back (docs/ARCHITECTURE.md, invariant 4) and say so:
`lag()` counts them as held and logs `projection_horizon_held` with the blocking
backend's pid. When the transaction ends (commit, carrying its own late event, or
rollback) everything is projected exactly once.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from listeners import Projector, ProjectorConfig
from store import EventStore, connect, prepare_event
from store.projections import verify_projections
from tests.support.factories import create_data
from tests.support.fault_sizes import scaled
from tests.support.projections import log_and_checkpoint
from tests.support.waiting import eventually
from videojobs import Settings
from videojobs import connect as connect_manager


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_idle_transaction_holds_the_horizon_and_nothing_is_skipped(database_url: str, outcome: str) -> None:
    writes = scaled(200)
    projector = Projector(ProjectorConfig(database_url=database_url, horizon_warn_after=0.2, batch_size=50))
    async with connect_manager(settings=Settings(database_url=database_url), listeners=False) as manager:
        before = [await manager.create_job(user_id="early", **create_data()) for _ in range(5)]
        idle = await connect(database_url)
        try:
            tx = idle.transaction()
            await tx.start()
            late = await EventStore(idle).append(prepare_event("create", create_data(), user_id="late"))
            jobs = await manager.bulk_create_jobs([create_data(user_id="after")] * (writes // 2))
            for job in jobs[: writes - writes // 2]:
                await manager.start_processing(job.job_id, "w1")
            result = await projector.run_once()
            assert result.events == len(before), "only events older than the open transaction are safe"

            with capture_logs() as logs:
                async def warned() -> bool:
                    sample = await projector.lag()
                    return any(e["event"] == "projection_horizon_held" for e in logs) and sample.held_events > 0
                await eventually(warned, 10, "lag() warns projection_horizon_held")
            sample = projector.last_lag
            assert sample.held_events == sample.events_behind == writes
            assert sample.blocking_pid == idle.get_server_pid()
            warning = next(e for e in logs if e["event"] == "projection_horizon_held")
            assert warning["log_level"] == "warning" and warning["blocking_pid"] == idle.get_server_pid()
            assert warning["held_events"] == writes
            assert (await projector.run_once()).events == 0, "the projector passed an open transaction"
            await (tx.commit() if outcome == "commit" else tx.rollback())
        finally:
            await idle.close()
        result = await projector.run_once()
        late_events = 1 if outcome == "commit" else 0
        assert result.events == writes + late_events
        total, applied, _ = await log_and_checkpoint(database_url)
        assert applied == total == len(before) + writes + late_events
        assert (await projector.lag()).events_behind == 0
        visible = {j.job_id for j in (await manager.list_jobs(limit=500)).items}
        assert (late.job_id in visible) == (outcome == "commit")
        verify = await verify_projections(database_url)
        assert verify.ok and verify.events == total, verify.differences[:3]
        assert (await manager.audit.verify_history()).ok
    await projector.stop()
