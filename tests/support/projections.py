"""Waiting for the projector and checking what it wrote: caught up, applied everything, equal to a replay."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from listeners import project_batch
from store.identity import connect_as
from store.projections import verify_projections
from tests.support.waiting import eventually


async def assert_read_model_is_fold(database_url: str) -> None:
    """Live projection == replay of the events, and stats == recount."""
    result = await verify_projections(database_url)
    assert result.ok, [d.model_dump(exclude={"live", "expected"}) for d in result.differences[:5]]


async def wait_caught_up(pool, name: str = "main", within: float = 20) -> None:
    """Poll until the checkpoint reaches the last committed event (commit order)."""
    async def caught_up() -> bool:
        last = await pool.fetchrow("SELECT xact_id, position FROM vjm.job_events ORDER BY xact_id DESC, "
                                   "position DESC LIMIT 1")
        cp = await pool.fetchrow("SELECT xact_id, position FROM vjm.projection_checkpoints WHERE name = $1", name)
        return last is None or (cp is not None and tuple(cp) >= tuple(last))
    await eventually(caught_up, within)


async def log_and_checkpoint(url: str, name: str = "main") -> tuple[int, int, int]:
    """(events in the log, events the checkpoint has applied, change_seq)."""
    conn = await asyncpg.connect(url)
    try:
        total = await conn.fetchval("SELECT count(*) FROM vjm.job_events")
        row = await conn.fetchrow("SELECT events, change_seq FROM vjm.projection_checkpoints WHERE name = $1", name)
    finally:
        await conn.close()
    return total, (row["events"] if row else 0), (row["change_seq"] if row else 0)


async def wait_projected(url: str, within: float = 30, name: str = "main") -> int:
    """Poll until the checkpoint has applied every event in the log; returns the event count."""
    seen: list[int] = []

    async def caught_up() -> bool:
        total, applied, _ = await log_and_checkpoint(url, name)
        seen[:] = [total]
        return applied == total

    await eventually(caught_up, within, "projector caught up with the log")
    return seen[0]


async def project_all(database_url: str) -> None:
    """Run the projector's batches in this task, as vjm_projector, until it has caught up (no projector runs)."""
    conn = await connect_as(database_url, role="vjm_projector")
    try:
        async def caught_up() -> bool:
            batch = await project_batch(conn, "main", batch_size=1000, per_job_limit=10)
            return batch.events == 0 and await conn.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM vjm.job_events e, vjm.projection_checkpoints c "
                "WHERE c.name = 'main' AND (e.xact_id, e.position) > (c.xact_id, c.position))")
        await eventually(caught_up)
    finally:
        await conn.close()


async def wait_in_change_feed(service_pool, jobs: Iterable, within: float = 20) -> int:
    """Poll until the change feed (vjm.job_changes, written by the projector) holds a change for each of
    `jobs`; returns the newest seq. `service_pool` must see every job (a service role)."""
    ids = [j.job_id for j in jobs]

    async def present() -> bool:
        return await service_pool.fetchval("SELECT count(DISTINCT job_id) FROM vjm.job_changes "
                                           "WHERE job_id = ANY ($1::uuid[])", ids) == len(set(ids))
    await eventually(present, within, "the projector to write the jobs' changes to the feed")
    return await service_pool.fetchval("SELECT coalesce(max(seq), 0) FROM vjm.job_changes")
