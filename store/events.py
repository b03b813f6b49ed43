"""The event store: append transitions (one round trip each) and read them back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from statemachine import Payload, Trigger, ValidationError, validate_payload

from .errors import translate_error
from .ids import new_job_id
from .models import Event, event_from_row
from .sqlfiles import load_queries

log = structlog.get_logger("vjm.events")
Executor = asyncpg.Pool | asyncpg.Connection
MAX_BULK_CREATES = 100_000


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A transition to append: what the writer chooses. The database fills in the rest."""

    job_id: UUID
    trigger: Trigger
    data: dict[str, Any]
    actor: str | None = None
    expected_version: int | None = None
    attempt: int | None = None
    user_id: str | None = None
    team_id: UUID | None = None

    def args(self) -> tuple:
        """The arguments of vjm.append_event, in order."""
        return (self.job_id, self.trigger.value, self.data, self.actor, self.expected_version,
                self.attempt, self.user_id, self.team_id)


def prepare_event(trigger: Trigger | str, data: dict[str, Any] | Payload | None = None, *,
                  job_id: UUID | str | None = None, actor: str | None = None,
                  expected_version: int | None = None, attempt: int | None = None,
                  user_id: str | None = None, team_id: UUID | str | None = None) -> NewEvent:
    """Validate a transition's payload and ids; raises ValidationError naming the field."""
    payload = validate_payload(trigger, data)
    trigger = Trigger(trigger)
    if trigger is Trigger.CREATE:
        if not user_id or not isinstance(user_id, str) or len(user_id) > 128:
            raise ValidationError("user_id is required (1-128 characters)", field="user_id")
    elif job_id is None:
        raise ValidationError("job_id is required", field="job_id")
    return NewEvent(
        job_id=as_uuid(job_id, "job_id") if job_id is not None else new_job_id(),
        trigger=trigger,
        data=payload.model_dump(mode="json", exclude_none=True),
        actor=actor,
        expected_version=_as_int(expected_version, "expected_version", minimum=0),
        attempt=_as_int(attempt, "attempt", minimum=0),
        user_id=user_id,
        team_id=as_uuid(team_id, "team_id") if team_id is not None else None,
    )


def as_uuid(value: UUID | str, field: str = "job_id") -> UUID:
    """A UUID from a UUID or its text; ValidationError naming `field` otherwise."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise ValidationError(f"{field} must be a UUID, got {str(value)[:60]!r}", field=field) from None


def _as_int(value: Any, field: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > 2**31 - 1:
        raise ValidationError(f"{field} must be an integer >= {minimum}", field=field)
    return value


class EventStore:
    """Appends and reads vjm.job_events through a pool or a connection."""

    def __init__(self, executor: Executor):
        self._executor = executor
        self._queries = load_queries()

    async def append(self, event: NewEvent) -> Event:
        """Append one transition in one round trip; raises a vjm error if it is refused."""
        try:
            row = await self._executor.fetchrow(self._queries["event_append"], *event.args())
        except Exception as exc:
            raise translate_error(exc, job_id=event.job_id, trigger=event.trigger.value,
                                  attempt=event.attempt) from exc
        stored = event_from_row(row, event.data)
        log.debug("job_transitioned", job_id=str(stored.job_id), from_state=stored.from_state,
                  to_state=stored.to_state, version=stored.version)
        return stored

    async def append_creates(self, events: Sequence[NewEvent]) -> list[Event]:
        """Append many create events in one statement; all or nothing."""
        if not events:
            return []
        if len(events) > MAX_BULK_CREATES:
            raise ValidationError(f"at most {MAX_BULK_CREATES} creates per call", field="events")
        if any(e.trigger is not Trigger.CREATE for e in events):
            raise ValidationError("append_creates takes create events only", field="trigger")
        columns = ([e.job_id for e in events], [e.data for e in events], [e.actor for e in events],
                   [e.user_id for e in events], [e.team_id for e in events])
        try:
            rows = await self._executor.fetch(self._queries["event_append_creates"], *columns)
        except Exception as exc:
            raise translate_error(exc, job_id=events[0].job_id, trigger=events[0].trigger.value) from exc
        by_job = {e.job_id: e.data for e in events}
        return [event_from_row(row, by_job[row["job_id"]]) for row in rows]

    async def read_stream(self, job_id: UUID | str) -> list[Event]:
        """Every event of one job, in version order (empty if unknown or not visible)."""
        rows = await self._read("event_get_stream", as_uuid(job_id, "job_id"))
        return [event_from_row(r) for r in rows]

    async def read_head(self, job_id: UUID | str) -> Event | None:
        """The latest event of one job, or None."""
        rows = await self._read("event_get_head", as_uuid(job_id, "job_id"))
        return event_from_row(rows[0]) if rows else None

    async def read_after(self, cursor: tuple[int, int] = (0, 0), limit: int = 500) -> list[Event]:
        """Events after `cursor` in commit-safe order (see the event_get_after query)."""
        if (not isinstance(cursor, tuple) or len(cursor) != 2
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cursor)):
            raise ValidationError("cursor must be a pair of non-negative integers (xact_id, position)", field="cursor")
        rows = await self._read("event_get_after", cursor[0], cursor[1], _as_int(limit, "limit", minimum=1))
        return [event_from_row(r) for r in rows]

    async def _read(self, query: str, *args: Any) -> list[Any]:
        try:
            return await self._executor.fetch(self._queries[query], *args)
        except Exception as exc:
            raise translate_error(exc) from exc

    async def transition_table(self) -> list[tuple[str, str, str, str | None]]:
        """vjm.transitions as tuples, for comparison with statemachine.RULES."""
        rows = await self._executor.fetch(self._queries["transition_get_all"])
        return [tuple(r) for r in rows]

