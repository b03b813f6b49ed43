"""What the projector does with an event it cannot apply: find it, stop there, say so once.

A batch that fails (`BatchFailed`, listeners/batch.py) is bisected: smaller batches
are applied, each in its own transaction, until one event alone fails. The events
before it are projected; the projector's checkpoint stops just before it. The stop is
recorded in the checkpoint row (`vjm.projection_checkpoints.fault_*`): /healthz reports
the projector degraded with the position, /metrics sets `vjm_projector_stopped` and
`vjm_projector_stopped_position`, and `vjm projections status` shows it. One error line
`projector_stopped` is logged when the projector first stops at an event; retries (every
`fault_retry_interval`) only count `fault_attempts`.

The projector stops for every tenant, not only for the failing job: commit order is
the contract of the change feed (`seq` is gap-free in commit order and is the resume
token), of read-your-writes (a write is visible once the checkpoint passes it) and of
"rebuild == live". Skipping one job would break all three silently; a stop is loud and
one admin command ends it: `vjm projections void --position N --reason ...` appends a
`void` that the fold honours (store/projections/fold.py), and the next retry gets past it. An
event that fails for a reason since fixed (a code fix, a migration) is simply applied
by the next retry. Either way `projector_resumed` is logged and the stop is cleared.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

from store.faults import ClearedFault, ProjectorFault, clear_fault, record_fault

from .batch import BatchFailed, BatchResult, project_batch

log = structlog.get_logger("vjm.projector")


@dataclass(frozen=True, slots=True)
class Isolation:
    """What isolating a failed batch did: the good events it applied, and where it stopped (None: it did not)."""

    events: int
    batches: int
    jobs: int
    notifications: int
    cursor: tuple[int, int] | None
    fault: ProjectorFault | None


async def isolate(conn: asyncpg.Connection, name: str, failed: BatchFailed, *, per_job_limit: int) -> Isolation:
    """Apply the events of `failed` in smaller batches up to the first event that fails alone; record that one."""
    events = batches = jobs = notifications = 0
    cursor: tuple[int, int] | None = None
    size = max(1, len(failed.events) // 2)
    latest = failed
    while events < len(failed.events):
        if len(latest.events) == 1:
            return Isolation(events, batches, jobs, notifications, cursor,
                             await stop_at(conn, name, latest))
        try:
            batch: BatchResult = await project_batch(conn, name, batch_size=size, per_job_limit=per_job_limit)
        except BatchFailed as smaller:
            latest, size = smaller, max(1, size // 2)
            continue
        if batch.events == 0:
            break
        events, batches = events + batch.events, batches + 1
        jobs, notifications, cursor = jobs + batch.jobs, notifications + batch.notifications, batch.cursor
    return Isolation(events, batches, jobs, notifications, cursor, None)  # it applied this time


async def stop_at(conn: asyncpg.Connection, name: str, failed: BatchFailed) -> ProjectorFault:
    """Record the stop at the one event of `failed`; log it the first time."""
    event = failed.events[0]
    error = f"{type(failed.cause).__name__}: {failed.cause}"
    new, fault = await record_fault(conn, name, event, error)
    if new:
        log.error("projector_stopped", name=name, position=event.position, xact_id=event.xact_id,
                  job_id=str(event.job_id), version=event.version, type=str(event.type), error=error[:500],
                  hint=f"vjm projections void --position {event.position} --reason '...' skips it "
                       "(the log keeps it); every tenant's projection waits until then")
    else:
        log.debug("projector_still_stopped", name=name, position=event.position, attempts=fault.attempts)
    return fault


async def resumed(conn: asyncpg.Connection, name: str) -> ClearedFault | None:
    """After the checkpoint moved: clear a recorded stop it has passed, and log it."""
    cleared = await clear_fault(conn, name)
    if cleared is not None:
        log.warning("projector_resumed", name=name, position=cleared.position, job_id=str(cleared.job_id),
                    voided=cleared.voided, stopped_since=cleared.since.isoformat())
    return cleared
