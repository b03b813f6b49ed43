"""Writes that hand back the job's whole event stream in the same round trip.

The VideoJobManager returns the job as it is after each write. Reading it from the
projection costs a second round trip and, right after a write, usually finds the
projection one event behind. These calls return the job's events instead (the
claim: each claimed job's stream up to its `start`; an append: the new event plus
the earlier ones), and the caller folds them (listeners.fold) into the job.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from .errors import translate_error
from .events import EventStore, NewEvent
from .models import Event, event_from_row
from .sqlfiles import load_queries

Executor = asyncpg.Pool | asyncpg.Connection


async def claim_jobs(executor: Executor, worker_id: str, limit: int, platform: str | None) -> list[list[Event]]:
    """Atomically start up to `limit` queued jobs for `worker_id`, oldest first (vjm.claim_jobs).

    One list of events per claimed job, in version order, ending with its `start`;
    the jobs in the order they were claimed.
    """
    try:
        rows = await executor.fetch(load_queries()["job_claim_many"], worker_id, limit, platform)
    except Exception as exc:
        raise translate_error(exc, trigger="start") from exc
    streams: dict[UUID, list[Event]] = {}
    for row in rows:
        streams.setdefault(row["job_id"], []).append(event_from_row(row))
    return sorted(streams.values(), key=lambda stream: stream[-1].position)


async def append_with_stream(executor: Executor, event: NewEvent) -> list[Event]:
    """Append one transition (not a create) and return the job's whole stream, ending with it.

    One round trip, except when another writer's event committed between the
    statement's snapshot and the append: then the stream is read again.
    """
    try:
        rows = await executor.fetch(load_queries()["event_append_with_stream"], *event.args())
    except Exception as exc:
        raise translate_error(exc, job_id=event.job_id, trigger=event.trigger.value,
                              attempt=event.attempt) from exc
    appended = next(event_from_row(row, event.data) for row in rows if row["data"] is None)
    earlier = sorted((event_from_row(row) for row in rows if row["data"] is not None), key=lambda e: e.version)
    if [e.version for e in earlier] == list(range(1, appended.version)):
        return [*earlier, appended]
    stream = [e for e in await EventStore(executor).read_stream(event.job_id) if e.version < appended.version]
    return [*stream, appended]
