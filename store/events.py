"""The event store: append transitions (one round trip each) and read them back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pydantic_core
import structlog

from statemachine import Payload, State, Trigger, ValidationError, validate_payload
from statemachine.payloads import validate_creates
from statemachine.validation import check_user_id

from .errors import translate_error
from .executor import Connection, Executor
from .ids import new_job_id, new_job_ids  # noqa: F401 - re-exported; creates no longer need them (the database issues ids)
from .models import CreatedBatch, Event, construct_valid, event_from_row
from .queries import fetch_all, fetch_one, fetch_value

log = structlog.get_logger("vjm.events")
MAX_BULK_CREATES = 100_000


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A transition to append: what the writer chooses. The database fills in the rest."""

    job_id: UUID | None  # None for a create: the database issues the id
    trigger: Trigger
    data: dict[str, Any]
    actor: str | None = None
    expected_version: int | None = None
    attempt: int | None = None
    user_id: str | None = None
    team_id: UUID | None = None

    def params(self) -> dict[str, Any]:
        """The parameters of the event_append queries (vjm.append_event's arguments), by name."""
        return {"job_id": self.job_id, "trigger": self.trigger.value, "data": self.data, "actor": self.actor,
                "expected_version": self.expected_version, "attempt": self.attempt, "user_id": self.user_id,
                "team_id": self.team_id}


def prepare_event(trigger: Trigger | str, data: dict[str, Any] | Payload | None = None, *,
                  job_id: UUID | str | None = None, actor: str | None = None,
                  expected_version: int | None = None, attempt: int | None = None,
                  user_id: str | None = None, team_id: UUID | str | None = None) -> NewEvent:
    """Validate a transition's payload and ids; raises ValidationError naming the field."""
    payload = validate_payload(trigger, data)
    trigger = Trigger(trigger)
    if trigger is Trigger.CREATE:
        check_user_id(user_id)
    elif job_id is None:
        raise ValidationError("job_id is required", field="job_id")
    return NewEvent(
        job_id=as_uuid(job_id, "job_id") if job_id is not None else None,
        trigger=trigger,
        data=payload.model_dump(mode="json", exclude_none=True),
        actor=actor,
        expected_version=_as_int(expected_version, "expected_version", minimum=0),
        attempt=_as_int(attempt, "attempt", minimum=0),
        user_id=user_id,
        team_id=as_uuid(team_id, "team_id") if team_id is not None else None,
    )


@dataclass(frozen=True, slots=True)
class NewCreates:
    """Create events to append in one statement, column by column (what vjm.append_create_batch takes)."""

    job_ids: list[UUID | None]  # None: the database issues the id (an end user may name none)
    data: list[dict[str, Any]]
    actors: list[str | None]
    user_ids: list[str]
    team_ids: list[UUID | None]

    @classmethod
    def of(cls, events: Sequence[NewEvent]) -> NewCreates:
        """The columns of create events prepared one by one (prepare_event)."""
        user_ids: list[str] = []
        for event in events:
            if event.trigger is not Trigger.CREATE or event.user_id is None:
                raise ValidationError("append_creates takes create events (prepare_event) only", field="trigger")
            user_ids.append(event.user_id)
        return cls([e.job_id for e in events], [e.data for e in events], [e.actor for e in events], user_ids,
                   [e.team_id for e in events])


def prepare_creates(data: list[dict[str, Any]], user_ids: list[str], team_ids: list[UUID | str | None],
                    actors: list[str | None]) -> NewCreates:
    """Validate many creates at once, by the rules prepare_event("create", ...) applies to each.

    The ValidationError names `<index>.<field>` of the first bad create (payloads are checked first).
    """
    if not len(data) == len(user_ids) == len(team_ids) == len(actors):
        raise ValidationError("data, user_ids, team_ids and actors must have the same length", field="data")
    payloads = validate_creates(data)
    for index, user_id in enumerate(user_ids):
        check_user_id(user_id, field=f"{index}.user_id")
    teams = [t if t is None or isinstance(t, UUID) else as_uuid(t, f"{i}.team_id") for i, t in enumerate(team_ids)]
    return NewCreates([None] * len(data), payloads, list(actors), list(user_ids), teams)


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

    async def append(self, event: NewEvent, *, lock_timeout: float | None = None) -> Event:
        """Append one transition in one round trip; raises a vjm error if it is refused.

        `lock_timeout` (seconds): wait at most this long for what another transaction holds, such as a
        create's idempotency key (then IdempotencyKeyInUse), in a transaction of its own (or the caller's).
        """
        try:
            if lock_timeout is None:
                row = await fetch_one(self._executor, "event_append", **event.params())
            else:
                row = await _append_waiting(self._executor, event, lock_timeout)
        except Exception as exc:
            raise translate_error(exc, job_id=event.job_id, trigger=event.trigger.value,
                                  attempt=event.attempt) from exc
        return _stored(row, event)

    async def append_as_user(self, event: NewEvent, *, token: str, lock_timeout: float | None = None) -> Event:
        """As append, as the end user whose signed token is `token` (store.identity.end_user_token), in one
        round trip with no BEGIN or COMMIT: the role, the token and the append are one statement
        (vjm_entry.append_event), which is its own transaction, so the identity ends with it. The executor
        is the end users' pool, or one of its connections outside a transaction (inside one, the identity
        would outlive the call: ValidationError)."""
        self._outside_a_transaction()
        milliseconds = None if lock_timeout is None else max(1, round(lock_timeout * 1000))
        try:
            row = await fetch_one(self._executor, "event_append_as_user", token=token, lock_timeout_ms=milliseconds,
                                  **event.params())
        except Exception as exc:
            raise translate_error(exc, job_id=event.job_id, trigger=event.trigger.value,
                                  attempt=event.attempt) from exc
        return _stored(row, event)

    def _outside_a_transaction(self) -> None:
        """An end user's one-statement write needs the pool, or a connection outside a transaction: inside one,
        the identity would outlive the call."""
        if not isinstance(self._executor, asyncpg.Pool) and self._executor.is_in_transaction():
            raise ValidationError("an end user's one-statement write needs a connection outside a transaction",
                                  field="executor")

    async def append_creates(self, events: Sequence[NewEvent] | NewCreates) -> list[Event]:
        """Append many create events in one statement; all or nothing. The events in the order given."""
        count = len(events.job_ids) if isinstance(events, NewCreates) else len(events)
        if not count:
            return []
        creates = events if isinstance(events, NewCreates) else _checked_creates(events)
        return created_events(creates, await self.append_create_batch(creates))

    async def append_create_batch(self, creates: NewCreates, *, token: str | None = None) -> CreatedBatch:
        """As append_creates, returning what the database decided as columns (cheaper for big batches).
        With `token`, as the end user whose signed token it is, in one statement (as append_as_user)."""
        if not 1 <= len(creates.job_ids) <= MAX_BULK_CREATES:
            raise ValidationError(f"1 to {MAX_BULK_CREATES} creates per call", field="events")
        identity: dict[str, str] = {}
        if token is not None:
            self._outside_a_transaction()
            identity["token"] = token
        try:
            rows = await fetch_all(self._executor, "event_append_creates_as_user" if identity else "event_append_creates",
                                   job_ids=creates.job_ids, payloads_json=creates_payloads(creates),
                                   actors=creates.actors, user_ids=creates.user_ids, team_ids=creates.team_ids,
                                   **identity)
        except Exception as exc:
            raise translate_error(exc, job_id=creates.job_ids[0], trigger=Trigger.CREATE.value) from exc
        return created_batch(rows)  # the rows come in the order sent

    async def read_stream(self, job_id: UUID | str) -> list[Event]:
        """Every event of one job, in version order (empty if unknown or not visible)."""
        rows = await self._read("event_get_stream", job_id=as_uuid(job_id, "job_id"))
        return [event_from_row(r) for r in rows]

    async def read_head(self, job_id: UUID | str) -> Event | None:
        """The latest event of one job, or None."""
        rows = await self._read("event_get_head", job_id=as_uuid(job_id, "job_id"))
        return event_from_row(rows[0]) if rows else None

    async def read_after(self, cursor: tuple[int, int] = (0, 0), limit: int = 500) -> list[Event]:
        """Events after `cursor` in commit-safe order (see the event_get_after query)."""
        if (not isinstance(cursor, tuple) or len(cursor) != 2
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in cursor)):
            raise ValidationError("cursor must be a pair of non-negative integers (xact_id, position)", field="cursor")
        rows = await self._read("event_get_after", after_xact_id=cursor[0], after_position=cursor[1],
                                limit=_as_int(limit, "limit", minimum=1))
        return [event_from_row(r) for r in rows]

    async def _read(self, query: str, **params: Any) -> list[asyncpg.Record]:
        try:
            return await fetch_all(self._executor, query, **params)
        except Exception as exc:
            raise translate_error(exc) from exc

    async def transition_table(self) -> list[tuple[str, str, str, str | None]]:
        """vjm.transitions as tuples, for comparison with statemachine.RULES."""
        rows = await fetch_all(self._executor, "transition_get_all")
        return [(r["trigger"], r["from_state"], r["to_state"], r["guard"]) for r in rows]


def _stored(row: asyncpg.Record, event: NewEvent) -> Event:
    stored = event_from_row(row, event.data)
    log.debug("job_transitioned", job_id=str(stored.job_id), from_state=stored.from_state,
              to_state=stored.to_state, version=stored.version)
    return stored


async def _append_waiting(executor: Executor, event: NewEvent, lock_timeout: float) -> asyncpg.Record:
    """event_append in a transaction whose lock waits end after `lock_timeout` seconds (SET LOCAL lock_timeout)."""
    async with _connection(executor) as conn, _transaction(conn):
        await fetch_value(conn, "transaction_lock_timeout_set", milliseconds=max(1, round(lock_timeout * 1000)))
        return await fetch_one(conn, "event_append", **event.params())


@contextlib.asynccontextmanager
async def _connection(executor: Executor) -> AsyncIterator[Connection]:
    if isinstance(executor, asyncpg.Pool):
        async with executor.acquire() as conn:
            yield conn
    else:
        yield executor


@contextlib.asynccontextmanager
async def _transaction(conn: Connection) -> AsyncIterator[None]:
    """The caller's transaction if one is open (a user's, acting_as), else a new one."""
    if conn.is_in_transaction():
        yield
    else:
        async with conn.transaction():
            yield


def _checked_creates(events: Sequence[NewEvent]) -> NewCreates:
    if len(events) > MAX_BULK_CREATES:
        raise ValidationError(f"at most {MAX_BULK_CREATES} creates per call", field="events")
    return NewCreates.of(events)


def created_batch(rows: Sequence[asyncpg.Record]) -> CreatedBatch:
    """vjm.append_create_batch's rows (position, xact_id, job_id, attempts_left, actor, occurred_at: the columns
    the database decides), in the order sent, as one model."""
    return construct_valid(CreatedBatch, {
        "xact_ids": [r["xact_id"] for r in rows], "job_ids": [r["job_id"] for r in rows],
        "positions": [r["position"] for r in rows], "attempts_left": [r["attempts_left"] for r in rows],
        "actors": [r["actor"] for r in rows], "occurred_at": [r["occurred_at"] for r in rows]})


def creates_payloads(creates: NewCreates) -> str:
    """The payloads of `creates` as one JSON array (text: the pool's jsonb codec would encode it once more)."""
    return pydantic_core.to_json(creates.data).decode()


def created_events(creates: NewCreates, batch: CreatedBatch) -> list[Event]:
    """The stored create events: what was sent, with what the database decided."""
    return [construct_valid(Event, {
        "position": position, "xact_id": xact_id, "job_id": job_id, "version": 1, "type": Trigger.CREATE,
        "from_state": None, "to_state": State.QUEUED, "attempt": 0, "attempts_left": attempts_left,
        "actor": actor, "user_id": user_id, "team_id": team_id, "occurred_at": occurred_at, "data": data})
        for job_id, data, user_id, team_id, position, xact_id, attempts_left, actor, occurred_at in zip(
            batch.job_ids, creates.data, creates.user_ids, creates.team_ids, batch.positions, batch.xact_ids,
            batch.attempts_left, batch.actors, batch.occurred_at, strict=True)]
