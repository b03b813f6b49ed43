"""One apply transaction of the projector: read, fold, write, advance, notify.

Five round trips: BEGIN, lock the checkpoint (store.projections.lock_batch, which also has the read and
the write keep their plans), read the batch with the rows it touches (store.projections.read_batch),
then one statement that writes the folded rows and derives the counters, the change feed, its notices
and the new checkpoint in SQL (write_batch), COMMIT.
The Python work per event is the row fold (store/projections/fold.py, `fold_rows`) alone.

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
read in the same transaction (only when the read says one of the jobs has a void at all) and the
fold skips them (store/projections/fold.py).

Commit-safe order: events are read below `vjm.projection_horizon()`, the oldest
transaction of this database still running (see vjm.projection_horizon in sql/schema/030_event_log.sql), so an
event that commits late can never sort before the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from store.faults import fetch_void_targets
from store.models import Event
from store.projections import lock_batch, read_batch, write_batch
from store.projections.fold import NO_VOIDS, Voids, fold_rows

from .listening import CONNECTION_ERRORS

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
        checkpoint = await lock_batch(conn, name)
        batch = await read_batch(conn, checkpoint.cursor, batch_size)
        events = batch.events
        if not events:
            return BatchResult(0, 0, 0, checkpoint.cursor, checkpoint.change_seq)
        voids = NO_VOIDS
        if batch.voided:  # rare: an admin voided an event of one of these jobs
            voids = Voids.of(await fetch_void_targets(conn, list({e.job_id for e in events})))
        cursor = events[-1].cursor
        try:
            folded = fold_rows(batch.before, events, voids)
            jobs, notifications = await write_batch(conn, name, checkpoint, folded, events, per_job_limit)
        except RETRY_ERRORS:
            raise
        except Exception as exc:
            raise BatchFailed(events, exc) from exc
    return BatchResult(len(events), jobs, notifications, cursor, checkpoint.change_seq + jobs)
