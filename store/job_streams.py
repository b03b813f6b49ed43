"""Writes that hand back the job's whole event stream in the same round trip.

The VideoJobManager returns the job as it is after each write. Reading it from the
projection costs a second round trip and, right after a write, usually finds the
projection one event behind. These calls return the job's events instead (the
claim: each claimed job's stream up to its `start`; an append: the new event plus
the earlier ones), and the caller folds them (listeners.fold) into the job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

import asyncpg

from statemachine import VJMError

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
    return sorted(_streams(rows).values(), key=lambda stream: stream[-1].position)


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


MAX_APPENDS_PER_CALL = 50  # vjm.append_events: one subtransaction per item, at most 50 per transaction


async def append_events(executor: Executor, events: Sequence[NewEvent]) -> list[list[Event] | VJMError]:
    """Append many transitions (no creates), each judged on its own; one round trip per 50.

    Per item, in order: the job's whole stream after the batch, or the typed error
    that refused it (the others still apply). Each call of up to 50 is one
    transaction: a failure of the call itself (connection lost) raises.
    """
    results: list[list[Event] | VJMError] = []
    for start in range(0, len(events), MAX_APPENDS_PER_CALL):
        results += await _append_chunk(executor, events[start:start + MAX_APPENDS_PER_CALL])
    return results


async def _append_chunk(executor: Executor, events: Sequence[NewEvent]) -> list[list[Event] | VJMError]:
    columns = ([e.job_id for e in events], [e.trigger.value for e in events], [e.data for e in events],
               [e.actor for e in events], [e.attempt for e in events], [e.expected_version for e in events])
    try:
        rows = await executor.fetch(load_queries()["event_append_many"], *columns)
    except Exception as exc:
        raise translate_error(exc) from exc
    refused: dict[int, VJMError] = {}
    for row in rows:
        if row["item"] is None:
            continue
        event = events[row["item"] - 1]
        error = asyncpg.PostgresError.new({"S": "ERROR", "C": row["error_code"], "M": row["error_message"],
                                           "D": row["error_detail"], "H": row["error_hint"]})
        translated = translate_error(error, job_id=event.job_id, trigger=event.trigger.value, attempt=event.attempt)
        refused[row["item"] - 1] = translated if isinstance(translated, VJMError) else VJMError(str(error))
    streams = _streams(row for row in rows if row["item"] is None)
    return [refused[i] if i in refused else streams[e.job_id] for i, e in enumerate(events)]


def _streams(rows: Iterable[asyncpg.Record]) -> dict[UUID, list[Event]]:
    """Event rows grouped by job, each job's in the order they came (version order)."""
    streams: dict[UUID, list[Event]] = {}
    for row in rows:
        streams.setdefault(row["job_id"], []).append(event_from_row(row))
    return streams
