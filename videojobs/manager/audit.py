"""Audit: every job's history with actors, searches over all events, past states, tamper evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from listeners.fold import apply_event
from statemachine import JobNotFound, Trigger, ValidationError
from store import Event, EventStore
from store.audit import EventQuery, find_events, read_stream_until, verify_chain
from store.events import as_uuid

from ..models import EventPage, HistoryReport, Job
from .core import ManagerCore


class AuditMixin(ManagerCore):
    """get_job_history, find_events, get_job_as_of, verify_history."""

    async def get_job_history(self, job_id: UUID | str) -> list[Event]:
        """Every event of the job in order: type, from/to state, actor, time and data (deleted jobs too)."""
        job_id = as_uuid(job_id)
        async with self._connection() as conn:
            events = await EventStore(conn).read_stream(job_id)
        if not events:
            raise JobNotFound(job_id)
        return events

    async def find_events(self, *, actor: str | None = None, type: str | None = None,
                          since: datetime | None = None, until: datetime | None = None,
                          user_id: str | None = None, team_id: UUID | str | None = None,
                          job_id: UUID | str | None = None, after: int = 0, limit: int = 100) -> EventPage:
        """Events matching the filters, oldest first; pass `next_cursor` back as `after` for the next page."""
        query = EventQuery(after_position=_position(after), actor=_text(actor, "actor"), type=_trigger(type),
                           since=_aware(since, "since"), until=_aware(until, "until"),
                           user_id=_text(user_id, "user_id"),
                           team_id=as_uuid(team_id, "team_id") if team_id is not None else None,
                           job_id=as_uuid(job_id) if job_id is not None else None, limit=_limit(limit))
        if query.since and query.until and query.since >= query.until:
            raise ValidationError("until must be after since", field="until")
        async with self._connection() as conn:
            events = await find_events(conn, query)
        return EventPage(items=events, next_cursor=events[-1].position if len(events) == query.limit else None)

    async def get_job_as_of(self, job_id: UUID | str, at: datetime) -> Job:
        """The job as it was at instant `at`, replayed from its events."""
        job_id, at = as_uuid(job_id), _aware(at, "at")
        async with self._connection() as conn:
            events = await read_stream_until(conn, job_id, at)
        row = None
        for event in events:
            row = apply_event(row, event)
        if row is None:
            raise JobNotFound(job_id)
        return Job.model_validate(row)

    async def verify_history(self, job_id: UUID | str | None = None) -> HistoryReport:
        """Recompute the hash chain of one job or of all events; report the first broken link."""
        target = as_uuid(job_id) if job_id is not None else None
        async with self._connection() as conn:
            check = await verify_chain(conn, target)
        return HistoryReport(ok=check.ok, checked=check.checked, first_broken_job_id=check.broken_job_id,
                             first_broken_version=check.broken_version, reason=check.reason)


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime", field=field)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _text(value: str | None, field: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 200):
        raise ValidationError(f"{field} must be 1-200 characters", field=field)
    return value


def _trigger(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return Trigger(value).value
    except ValueError:
        raise ValidationError("type must be an event type", field="type") from None


def _position(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("after must be a non-negative position", field="after")
    return value


def _limit(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValidationError("limit must be an integer from 1 to 1000", field="limit")
    return value
