"""The read models as a pure function of the events.

`fold(before, events)` takes the projected rows of the jobs an event batch touches
and the batch (in commit order, or any order that keeps each job's versions in
order) and returns the rows after it, the stats deltas, the per-platform deltas and
the daily-bucket deltas; `fold_rows` returns the rows and daily deltas alone.
The projector applies `fold_rows` per batch and derives the counter deltas in SQL from
the rows before and after (sql/queries/projector_batch.sql); rebuild and verify `fold`
every event from nothing. The rows come from this one function either way, so "rebuild
== live" is a real check of the incremental path (double or skipped applies); the
counters are checked against the Python deltas and a recount (store/projections/verify.py).

Field rules, per event type (every event also sets status, attempt, attempts_left,
version, last_activity_at and last_position):
- create: all metadata (the idempotency key too); progress 0; created_at.
- start: worker_id, started_at; clears the previous attempt's outcome (completed_at,
  cancelled_at, processing_time, output_paths, error_message, progress).
- progress: progress_percent and clips_done when given.
- complete: output_paths, completed_at, progress 100, processing_time as reported
  by the processor, else computed from started_at.
- fail: error_message, completed_at, computed processing_time.
- cancel: cancelled_at (not completed_at: a cancel is not a completion); processing_time
  stays empty (the attempt reached no outcome; started_at to cancelled_at is how long it ran).
- time_out: error_message = the reason, worker_id cleared; to failed (no attempts
  left) it is finished like fail; back to queued it is not finished.
- requeue (the worker's Retry or transient error): as time_out, with error_message = its
  error; the run queue holds the job back until its retry_after.
- release (a worker shutting down gives the job back): back to queued, not finished, worker
  cleared; the attempt it took is given back (attempts_left, computed by the guard).
- retry: back to queued, not finished: completed_at, cancelled_at and processing_time cleared,
  worker cleared; the last error_message stays visible until the next start.
- update_metadata: the given metadata fields.
- reschedule: the given priority and run_at.
- delete: the row goes (history stays in vjm.job_events).
- void (an admin's): changes nothing but the fields every event sets.

Voided events (`Voids`: an admin appended `void` naming them, because the projector
could not apply them): their payload is skipped, their state change stands (status,
attempt, attempts_left, version, last_activity_at, last_position: the guard computed
those, the run queue already follows them); no daily bucket counts them. A voided
create means the job is not projected at all: its row goes, and every later event of
that job is skipped. The voids come from the log (store.projections.fetch_voids), so
the projector, rebuild and verify skip the same events.

Processing time is kept in whole milliseconds (stored as seconds, ms / 1000) so
that stats can add and subtract it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from statemachine import State, VJMError
from statemachine.validation import METADATA_FIELDS

from ..models import Event, construct_valid
from .deltas import DAILY_TYPES, Row, count_daily, platform_delta, stats_delta
from .rows import DailyKey, Fold, FoldedRows, JobRow

_STATUS = {state: state.value for state in State}  # a plain str, and a dict lookup is cheaper than .value


class ProjectionGap(VJMError):
    """An event arrived for a job the projection does not have (the read model is damaged)."""


@dataclass(frozen=True, slots=True)
class Voids:
    """Events the fold skips: `positions` voided; `jobs` whose create is voided (never projected)."""

    positions: frozenset[int] = frozenset()
    jobs: frozenset[UUID] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.positions)

    @classmethod
    def of(cls, targets: Iterable[tuple[int, UUID, str]]) -> Voids:
        """From (position, job_id, type) of each voided event."""
        targets = list(targets)
        return cls(frozenset(p for p, _, _ in targets), frozenset(j for _, j, t in targets if t == "create"))


NO_VOIDS = Voids()


def fold(before: Mapping[UUID, JobRow], events: Iterable[Event], voids: Voids = NO_VOIDS) -> Fold:
    """Apply `events` to the rows in `before`, skipping what `voids` names; pure, `before` is not modified."""
    folded = fold_rows(before, events, voids)
    rows = {job_id: (construct_valid(JobRow, row) if row is not None else None)
            for job_id, row in folded.rows.items()}
    return Fold(rows=rows, last_events=folded.last_events, stats=stats_delta(before, rows), daily=folded.daily,
                platforms=platform_delta(before, rows), transitions=folded.transitions)


def fold_rows(before: Mapping[UUID, JobRow | Row], events: Iterable[Event], voids: Voids = NO_VOIDS) -> FoldedRows:
    """The rows `events` leave from `before` (models or dicts, not modified), without the counter deltas."""
    state: dict[UUID, Row | None] = {}
    last: dict[UUID, Event] = {}
    daily: dict[DailyKey, list[int]] = {}
    transitions: dict[str, int] = {}
    for event in events:
        transitions[event.type] = transitions.get(event.type, 0) + 1
        job_id = event.job_id
        if job_id not in state:
            prior = before.get(job_id)
            state[job_id] = dict(prior) if prior is not None and job_id not in voids.jobs else None
        last[job_id] = event
        if voids and (event.position in voids.positions or job_id in voids.jobs):
            state[job_id] = apply_voided(state[job_id], event, voids)
            continue
        state[job_id] = row = apply_event(state[job_id], event)
        if event.type in DAILY_TYPES:
            count_daily(daily, row, event)
    return FoldedRows(state, last, daily, transitions)


def apply_event(row: Row | None, event: Event) -> Row | None:
    """One event applied to one job's row (a dict, changed in place and returned)."""
    if event.type == "create":
        return _create(event)
    if row is None:
        if event.type == "void":  # a void of an event of a job that is deleted (or whose create is voided)
            return None
        raise ProjectionGap(f"event {event.position} ({event.type}) for job {event.job_id} "
                            "which is not in the projection")
    if event.type == "delete":
        return None
    if event.type != "void":
        _HANDLERS[event.type](row, event)
    row.update(status=_STATUS[event.to_state], attempt=event.attempt, attempts_left=event.attempts_left,
               version=event.version, last_activity_at=event.occurred_at, last_position=event.position)
    return row


def apply_voided(row: Row | None, event: Event, voids: Voids = NO_VOIDS) -> Row | None:
    """A voided event, or any event of a job whose create is voided: only the state change stands."""
    if row is None or event.job_id in voids.jobs or event.type == "create":
        return None
    if event.type == "delete":
        return None
    row.update(status=_STATUS[event.to_state], attempt=event.attempt, attempts_left=event.attempts_left,
               version=event.version, last_activity_at=event.occurred_at, last_position=event.position)
    return row


def voids_in(events: Iterable[Event]) -> set[int]:
    """The positions the `void` events among `events` name (a job's own stream holds its voids)."""
    found = set()
    for event in events:
        if event.type == "void":
            position = event.data.get("position")
            if isinstance(position, int) and not isinstance(position, bool):
                found.add(position)
    return found


def apply_stream(row: Row | None, events: Iterable[Event]) -> Row | None:
    """One job's events (in version order, from just after `row`) applied to it, honouring the voids among them.

    For callers that hold a job's own stream (a write's events since the projected row, a
    job as of an instant): a job's voids are in its stream, after the events they name.
    """
    events = list(events)
    voided = voids_in(events)
    if any(e.type == "create" and e.position in voided for e in events):
        return None
    for event in events:
        row = apply_voided(row, event) if event.position in voided else apply_event(row, event)
    return row


def _create(event: Event) -> Row:
    return created_row(event.job_id, event.user_id, event.team_id, event.attempts_left, event.occurred_at,
                       event.position, event.data, status=_STATUS[event.to_state], attempt=event.attempt,
                       version=event.version)


def created_row(job_id: UUID, user_id: str, team_id: UUID | None, attempts_left: int, occurred_at: datetime,
                position: int, data: Mapping[str, Any], *, status: str = "queued", attempt: int = 0,
                version: int = 1) -> Row:
    """The row a create event makes (bulk creates call this without building the Event)."""
    # The whole row in JobRow's field order (a model's dump follows its dict), with the six
    # fields that every event sets (see apply_event): built at once, a create costs half.
    return {
        "job_id": job_id, "user_id": user_id, "team_id": team_id, "status": status, "attempt": attempt,
        "attempts_left": attempts_left, "max_attempts": data.get("max_attempts", attempts_left), "worker_id": None,
        "idempotency_key": data.get("idempotency_key"),
        "original_filename": data["original_filename"], "original_filesize": data["original_filesize"],
        "clip_count": data["clip_count"], "quality_preset": data["quality_preset"],
        "enhancement_level": data["enhancement_level"], "platform_target": data["platform_target"],
        "priority": data.get("priority", 0), "run_at": _instant(data.get("run_at")), "progress_percent": 0.0, "clips_done": 0, "output_paths": None, "error_message": None,
        "created_at": occurred_at, "started_at": None, "completed_at": None, "cancelled_at": None,
        "processing_time": None,
        "last_activity_at": occurred_at, "version": version, "last_position": position,
    }


def _start(row: Row, event: Event) -> None:
    row.update(worker_id=event.data.get("worker_id"), started_at=event.occurred_at, completed_at=None,
               cancelled_at=None, processing_time=None, output_paths=None, error_message=None, progress_percent=0.0, clips_done=0)


def _progress(row: Row, event: Event) -> None:
    if event.data.get("percent") is not None:
        row["progress_percent"] = float(event.data["percent"])
    if event.data.get("clips_done") is not None:
        row["clips_done"] = event.data["clips_done"]


def _complete(row: Row, event: Event) -> None:
    reported = event.data.get("processing_time")
    millis = round(reported * 1000) if reported is not None else _elapsed_ms(row, event)
    row.update(output_paths=list(event.data.get("output_paths", [])), completed_at=event.occurred_at,
               progress_percent=100.0, processing_time=_seconds(millis))


def _fail(row: Row, event: Event) -> None:
    row.update(error_message=event.data["error"], completed_at=event.occurred_at,
               processing_time=_seconds(_elapsed_ms(row, event)))


def _cancel(row: Row, event: Event) -> None:
    row.update(cancelled_at=event.occurred_at, completed_at=None, processing_time=None)


def _retry(row: Row, event: Event) -> None:
    row.update(completed_at=None, cancelled_at=None, processing_time=None, worker_id=None)


def _time_out(row: Row, event: Event) -> None:
    _back_or_failed(row, event, event.data.get("reason") or "timed out: no activity")


def _requeue(row: Row, event: Event) -> None:
    _back_or_failed(row, event, event.data.get("error") or "retry requested")


def _back_or_failed(row: Row, event: Event, error: str) -> None:
    """An attempt that ended without an outcome: back to the queue, or failed for good with no attempts left."""
    row.update(error_message=error, worker_id=None)
    if event.to_state == "failed":
        row.update(completed_at=event.occurred_at, processing_time=_seconds(_elapsed_ms(row, event)))
    else:
        row.update(completed_at=None, processing_time=None)


def _release(row: Row, event: Event) -> None:
    row.update(worker_id=None, completed_at=None, processing_time=None)


def _update_metadata(row: Row, event: Event) -> None:
    row.update({k: event.data[k] for k in METADATA_FIELDS if event.data.get(k) is not None})


def _reschedule(row: Row, event: Event) -> None:
    if event.data.get("priority") is not None:
        row["priority"] = event.data["priority"]
    if event.data.get("run_at") is not None:
        row["run_at"] = _instant(event.data["run_at"])


_HANDLERS: dict[str, Callable[[Row, Event], None]] = {
    "start": _start, "progress": _progress, "complete": _complete, "fail": _fail, "cancel": _cancel,
    "retry": _retry, "time_out": _time_out, "requeue": _requeue, "release": _release,
    "update_metadata": _update_metadata, "reschedule": _reschedule,
}


def _elapsed_ms(row: Row, event: Event) -> int | None:
    if row.get("started_at") is None:
        return None
    return max(0, round((event.occurred_at - row["started_at"]).total_seconds() * 1000))


def _seconds(millis: int | None) -> float | None:
    return None if millis is None else millis / 1000


def _instant(value: str | None) -> datetime | None:
    """A create's run_at (RFC 3339 UTC, as the payload rules let it through) as a datetime."""
    return None if value is None else datetime.fromisoformat(value)
