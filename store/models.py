"""Frozen pydantic models: rows leave store/ only as these, never as asyncpg Records."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from statemachine import State, Trigger

M = TypeVar("M", bound=BaseModel)


class Event(BaseModel):
    """One stored transition of one job."""

    model_config = ConfigDict(frozen=True)

    position: int
    xact_id: int
    job_id: UUID
    version: int
    type: Trigger
    from_state: State | None
    to_state: State
    attempt: int
    attempts_left: int
    actor: str
    user_id: str
    team_id: UUID | None
    occurred_at: datetime
    data: dict[str, Any]

    @property
    def cursor(self) -> tuple[int, int]:
        """Commit-order cursor of this event: (xact_id, position)."""
        return (self.xact_id, self.position)


class CreatedBatch(BaseModel):
    """What the database decided for a batch of create events, column by column, in the order sent.

    One model for the batch, not one per event: a bulk create of 10,000 jobs builds its
    Jobs straight from these columns and the ones it sent (store.NewCreates).
    """

    model_config = ConfigDict(frozen=True)

    # One statement, one transaction, except where a create's idempotency key named a job already:
    # that item is the job's create event, from the transaction that made it.
    xact_ids: list[int]
    job_ids: list[UUID]  # as sent, or issued by the database where none was sent
    positions: list[int]
    attempts_left: list[int]
    actors: list[str]
    occurred_at: list[datetime]

    @property
    def cursor(self) -> tuple[int, int]:
        """Commit-order cursor of the batch's newest event."""
        return max(zip(self.xact_ids, self.positions, strict=True))


EVENT_FIELDS = tuple(Event.model_fields)
_TRIGGERS: dict[str, Trigger] = {t.value: t for t in Trigger}
_STATES: dict[str | None, State | None] = {s.value: s for s in State} | {None: None}
_set = object.__setattr__


def construct_valid(model: type[M], values: dict[str, Any]) -> M:
    """A model from values that already have the field types exactly (no validation, no copy).

    For rows of our own database and what is folded from them: pydantic's validation
    was a third of the cost of a bulk create, and model_construct is slower still. The
    caller passes every field and nothing else (tests compare with model_validate).
    """
    instance = model.__new__(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


def event_from_row(row: Any, data: dict[str, Any] | None = None) -> Event:
    """Build an Event from a row of vjm.job_events' columns; `data` is used when the row does not carry it."""
    values = {name: row[name] for name in EVENT_FIELDS[:-1]}
    values["data"] = row["data"] if data is None else data
    values["type"] = _TRIGGERS[values["type"]]
    values["from_state"] = _STATES[values["from_state"]]
    values["to_state"] = _STATES[values["to_state"]]
    return construct_valid(Event, values)


def event_from_values(values: Any) -> Event:
    """Build an Event from a row's values whose first columns are vjm.job_events' in EVENT_FIELDS order."""
    fields = dict(zip(EVENT_FIELDS, values, strict=False))  # stops at the event's last column
    fields["type"] = _TRIGGERS[fields["type"]]
    fields["from_state"] = _STATES[fields["from_state"]]
    fields["to_state"] = _STATES[fields["to_state"]]
    return construct_valid(Event, fields)
