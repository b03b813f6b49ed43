"""One apply transaction of the projector: read, fold, write, advance, notify.

Why this is exactly-once: the checkpoint row is locked FOR UPDATE first, and the
events are read after the cursor *in that row*, not after a cursor kept in
memory. Whatever another applier (a projector that lost its leadership, a
rebuild) committed before we got the lock is therefore already behind the
cursor we read, and whatever we write commits atomically with the new cursor.
A crash anywhere before COMMIT leaves rows, stats, feed and checkpoint as they
were. The advisory lock only decides who *tries*; this row lock makes trying
twice harmless.

Failure: when the fold or the writes fail (an event the fold cannot apply, a value a
column cannot hold), the transaction rolls back and `BatchFailed` names the batch's
events; listeners/faults.py then finds the one event that fails. Errors that say
nothing about the events (connection lost, statement cancelled, deadlock) pass through.

Voids: the events an admin voided (`void` events in the log) among the batch's jobs are
read in the same transaction and the fold skips them (store/projections/fold.py).

Commit-safe order: events are read below `vjm.projection_horizon()`, the oldest
transaction of this database still running (see vjm.projection_horizon in sql/schema/030_event_log.sql), so an
event that commits late can never sort before the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from store.faults import fetch_void_targets
from store.models import Event
from store.projections import (
    Checkpoint,
    JobChange,
    ProjectionWrite,
    fetch_jobs,
    lock_checkpoint,
    read_events_after,
    write_projection,
)
from store.projections.fold import Fold, Voids, fold

from .listening import CONNECTION_ERRORS
from .notifications import build_notices

# Errors of the moment, not of the events: the projector retries the same batch after a pause.
RETRY_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.QueryCanceledError, asyncpg.DeadlockDetectedError,
                    asyncpg.SerializationError, asyncpg.LockNotAvailableError,
                    asyncpg.InsufficientResourcesError, asyncpg.OperatorInterventionError)


class BatchFailed(Exception):
    """A batch could not be applied (rolled back): its events, in commit order, and the error."""

    def __init__(self, events: list[Event], cause: BaseException):
        super().__init__(f"{len(events)} events from position {events[0].position}: {type(cause).__name__}: {cause}")
        self.events = events
        self.cause = cause


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one apply transaction did."""

    events: int
    jobs: int
    notifications: int
    cursor: tuple[int, int]
    change_seq: int


async def project_batch(conn: asyncpg.Connection, name: str, *, batch_size: int,
                        per_job_limit: int) -> BatchResult:
    """Apply the next batch of committed events to the read models, in one transaction."""
    async with conn.transaction():
        checkpoint = await lock_checkpoint(conn, name)
        events = await read_events_after(conn, checkpoint.cursor, batch_size)
        if not events:
            return BatchResult(0, 0, 0, checkpoint.cursor, checkpoint.change_seq)
        job_ids = list({e.job_id for e in events})
        before = await fetch_jobs(conn, job_ids)
        voids = Voids.of(await fetch_void_targets(conn, job_ids))
        try:
            write = build_write(fold(before, events, voids), checkpoint, events, per_job_limit)
            cursor, seq = events[-1].cursor, checkpoint.change_seq + len(write.changes)
            await write_projection(conn, name, write, cursor, seq, len(events))
        except RETRY_ERRORS:
            raise
        except Exception as exc:
            raise BatchFailed(events, exc) from exc
    return BatchResult(len(events), len(write.changes), len(write.notifications), cursor, seq)


def build_write(result: Fold, checkpoint: Checkpoint, events: list[Event], per_job_limit: int) -> ProjectionWrite:
    """Turn a fold into the rows, deltas, feed entries and notices of one transaction."""
    changes = _changes(result, checkpoint.change_seq)
    return ProjectionWrite(
        upserts=[row for row in result.rows.values() if row is not None],
        deletes=[job_id for job_id, row in result.rows.items() if row is None],
        stats=result.stats,
        daily=result.daily,
        platforms=result.platforms,
        transitions=result.transitions,
        changes=changes,
        notifications=build_notices(changes, events[-1].cursor, len(events), per_job_limit),
    )


def _changes(result: Fold, seq: int) -> list[JobChange]:
    """One feed entry per touched job, in the commit order of its last event."""
    last = sorted(result.last_events.values(), key=lambda e: e.cursor)
    return [JobChange(seq=seq + i, xact_id=e.xact_id, position=e.position, job_id=e.job_id, user_id=e.user_id,
                      team_id=e.team_id, status=e.to_state.value, version=e.version)
            for i, e in enumerate(last, start=1)]
