"""Frozen pydantic models: rows leave store/ only as these, never as asyncpg Records."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from statemachine import State, Trigger


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


def event_from_row(row: Any, data: dict[str, Any] | None = None) -> Event:
    """Build an Event from a row; `data` is used when the row does not carry it."""
    values = dict(row.items())
    if data is not None:
        values["data"] = data
    return Event.model_validate(values)
