"""Writes that hand back what the job was before them, so that the caller folds the job as it is now.

The VideoJobManager returns the job as it is after each write. Reading it from the
projection right after a write usually finds it one event behind, and replaying the
job's whole history makes every write cost O(events of the job). So each write
returns, in the same round trip, what the job was just before it (vjm.jobs_before):
its projected row, and the few events the projection has not applied yet. The caller
folds those and the new event (store.projections.fold): the cost of a write depends on the
projection's lag, not on the job's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from statemachine import Trigger, VJMError

from .errors import translate_error
from .events import NewCreates, NewEvent, created_batch, created_events, creates_payloads
from .executor import Executor
from .models import Event, event_from_row
from .projections import JobRow
from .queries import fetch_all

Row = dict[str, Any]
MAX_APPENDS_PER_CALL = 50  # vjm.append_events takes at most 50 transitions per call
LATEST = 2**31 - 1  # a version above every job's head: "up to now"


@dataclass(frozen=True, slots=True)
class JobHistory:
    """A write's event, and the job up to it: its projected row (`base`, None if not projected yet) and the events since.

    `since` is in version order, gap-free after the base's version, and ends with `event`
    (it is empty when the projection had already applied the event).
    """

    event: Event
    base: Row | None
    since: list[Event]


async def append_returning_job(executor: Executor, event: NewEvent) -> JobHistory:
    """Append one transition (not a create) and return the job's history since its projected row."""
    try:
        rows = await fetch_all(executor, "event_append_with_job", **event.params())
    except Exception as exc:
        raise translate_error(exc, job_id=event.job_id, trigger=event.trigger.value,
                              attempt=event.attempt) from exc
    appended = [event_from_row(row, event.data) for row in rows if row["kind"] == "new"]
    [history] = await _histories(executor, appended, (row for row in rows if row["kind"] == "before"))
    return history


async def claim_jobs(executor: Executor, worker_id: str, limit: int, platforms: Sequence[str] | None,
                     lease_seconds: float | None = None) -> list[JobHistory]:
    """Atomically start up to `limit` queued jobs of `platforms` (None: every platform) for `worker_id`, oldest first
    across them (vjm.claim_jobs), in claim order; with `lease_seconds`, each started job also gets a lease of that
    length in the same transaction."""
    try:
        rows = await fetch_all(executor, "job_claim_many", worker_id=worker_id, limit=limit,
                               platforms=None if platforms is None else list(platforms), lease_seconds=lease_seconds)
    except Exception as exc:
        raise translate_error(exc, trigger="start") from exc
    started = [event_from_row(row) for row in rows if row["kind"] == "new"]
    return await _histories(executor, started, (row for row in rows if row["kind"] == "before"))


async def append_events(executor: Executor, events: Sequence[NewEvent]) -> list[JobHistory | VJMError]:
    """Append many transitions (no creates), each judged on its own; one round trip per 50.

    Per item, in order: the job's history up to its event, or the typed error that
    refused it (the others still apply). Each call of up to 50 is one transaction: a
    failure of the call itself (connection lost) raises.
    """
    results: list[JobHistory | VJMError] = []
    for start in range(0, len(events), MAX_APPENDS_PER_CALL):
        results += await _append_chunk(executor, events[start:start + MAX_APPENDS_PER_CALL])
    return results


async def append_events_only(executor: Executor, events: Sequence[NewEvent]) -> list[Event | VJMError]:
    """As append_events, with the appended event per item instead of its job's history (one read less)."""
    results: list[Event | VJMError] = []
    for start in range(0, len(events), MAX_APPENDS_PER_CALL):
        chunk = events[start:start + MAX_APPENDS_PER_CALL]
        results += _outcomes(await _append_rows(executor, "event_append_many_events", chunk), chunk)
    return results


async def append_mixed(executor: Executor, creates: NewCreates,
                       events: Sequence[NewEvent]) -> tuple[list[Event], list[Event | VJMError]]:
    """Creates and up to 50 transitions in one statement and one commit (a write combiner's round).

    The creates are all or nothing (a refused one raises its error, and nothing of the call is written);
    back come the stored creates in the order given, and per transition its event or the typed error
    that refused it (as append_events_only).
    """
    if not 1 <= len(events) <= MAX_APPENDS_PER_CALL or not creates.job_ids:
        raise ValueError(f"append_mixed takes creates and 1-{MAX_APPENDS_PER_CALL} transitions")
    try:
        rows = await fetch_all(executor, "event_append_mixed", create_job_ids=creates.job_ids,
                               create_payloads_json=creates_payloads(creates), create_actors=creates.actors,
                               create_user_ids=creates.user_ids, create_team_ids=creates.team_ids,
                               **_columns(events))
    except Exception as exc:
        raise translate_error(exc, job_id=creates.job_ids[0], trigger=Trigger.CREATE.value) from exc
    created = sorted((row for row in rows if row["kind"] == "create"), key=lambda row: row["item"])
    outcomes = _outcomes((row for row in rows if row["kind"] == "transition"), events)
    return created_events(creates, created_batch(created)), outcomes


async def _append_chunk(executor: Executor, events: Sequence[NewEvent]) -> list[JobHistory | VJMError]:
    rows = await _append_rows(executor, "event_append_many", events)
    outcomes = _outcomes((row for row in rows if row["kind"] == "new"), events)
    appended = [o for o in outcomes if isinstance(o, Event)]
    histories = iter(await _histories(executor, appended, (row for row in rows if row["kind"] == "before")))
    return [o if isinstance(o, VJMError) else next(histories) for o in outcomes]


async def _append_rows(executor: Executor, query: str, events: Sequence[NewEvent]) -> list[asyncpg.Record]:
    try:
        return await fetch_all(executor, query, **_columns(events))
    except Exception as exc:
        raise translate_error(exc) from exc


def _columns(events: Sequence[NewEvent]) -> dict[str, list[Any]]:
    """vjm.append_events' arguments: the transitions column by column."""
    return {"job_ids": [e.job_id for e in events], "triggers": [e.trigger.value for e in events],
            "data": [e.data for e in events], "actors": [e.actor for e in events],
            "attempts": [e.attempt for e in events], "expected_versions": [e.expected_version for e in events]}


def _outcomes(rows: Iterable[asyncpg.Record], events: Sequence[NewEvent]) -> list[Event | VJMError]:
    """Per item, in item order: its event (with the payload sent), or the typed error that refused it."""
    items = sorted(rows, key=lambda row: row["item"])
    return [_refusal(row, events[row["item"] - 1]) if row["error_code"]
            else event_from_row(row, events[row["item"] - 1].data) for row in items]


def _refusal(row: asyncpg.Record, event: NewEvent) -> VJMError:
    error = asyncpg.PostgresError.new({"S": "ERROR", "C": row["error_code"], "M": row["error_message"],
                                       "D": row["error_detail"], "H": row["error_hint"]})
    translated = translate_error(error, job_id=event.job_id, trigger=event.trigger.value, attempt=event.attempt)
    return translated if isinstance(translated, VJMError) else VJMError(str(error))


async def read_job_now(executor: Executor, job_id: UUID) -> tuple[Row | None, list[Event]]:
    """The job as it is now, whatever the projection's lag: its projected row and the events since, in one snapshot.

    Both are read under the caller's row level security; nothing comes back for a job the
    caller may not see or that does not exist.
    """
    bases: dict[UUID, Row | None] = {}
    known: dict[UUID, dict[int, Event]] = {}
    _collect(await _read_before_versions(executor, [job_id], [LATEST]), bases, known)
    events = known.get(job_id, {})
    return bases.get(job_id), [events[v] for v in sorted(events)]


async def _histories(executor: Executor, appended: list[Event], before: Iterable[asyncpg.Record]) -> list[JobHistory]:
    """Each appended event's history, from vjm.jobs_before rows; re-read for a job whose gap the snapshot missed."""
    bases: dict[UUID, Row | None] = {}
    known: dict[UUID, dict[int, Event]] = {}
    _collect(before, bases, known)
    for event in appended:
        known.setdefault(event.job_id, {})[event.version] = event
    missing = [e for e in appended if _chain(bases.get(e.job_id), known[e.job_id], e.version) is None]
    if missing:  # an event committed between the statement's snapshot and the append: read again
        _collect(await _read_before(executor, missing), bases, known)
    histories = []
    for event in appended:
        base = bases.get(event.job_id)
        since = _chain(base, known[event.job_id], event.version)
        if since is None:
            raise VJMError(f"the history of job {event.job_id} before version {event.version} is incomplete")
        histories.append(JobHistory(event, base, since))
    return histories


def _collect(rows: Iterable[asyncpg.Record], bases: dict[UUID, Row | None],
             known: dict[UUID, dict[int, Event]]) -> None:
    for row in rows:
        base = row["base"]
        if base is not None:
            bases[row["job_id"]] = _job_row(base)
        if row["position"] is not None:
            known.setdefault(row["job_id"], {})[row["version"]] = event_from_row(row)


def _chain(base: Row | None, known: dict[int, Event], version: int) -> list[Event] | None:
    """The events after the base's version up to `version`, or None when one is missing."""
    wanted = range((base["version"] if base else 0) + 1, version + 1)
    chain = [known[v] for v in wanted if v in known]
    return chain if len(chain) == len(wanted) else None


async def _read_before(executor: Executor, events: list[Event]) -> list[asyncpg.Record]:
    return await _read_before_versions(executor, [e.job_id for e in events], [e.version for e in events])


async def _read_before_versions(executor: Executor, job_ids: list[UUID], versions: list[int]) -> list[asyncpg.Record]:
    try:
        return await fetch_all(executor, "job_get_before", job_ids=job_ids, versions=versions)
    except Exception as exc:
        raise translate_error(exc) from exc


def _job_row(base: Any) -> Row:
    """A vjm.jobs row sent as JSON, with its column types back (what the projector folds)."""
    values = json.loads(base) if isinstance(base, str) else base
    return JobRow.model_validate(values).model_dump()
