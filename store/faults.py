"""SQL access for what the projector cannot apply: voided events and the recorded stop.

The stop lives in the projector's checkpoint row (vjm.projection_checkpoints.fault_*,
sql/schema/070_read_models.sql); voids are `void` events in the log (an admin's, through
vjm.void_event). Named queries: sql/queries/projector_faults.sql.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from .executor import Executor
from .models import Event, event_from_row
from .queries import fetch_all, fetch_one, fetch_optional

VoidTarget = tuple[int, UUID, str]  # (position, job_id, type) of a voided event


class ProjectorFault(BaseModel):
    """Where a projector is stopped: the event it cannot apply, and why."""

    model_config = ConfigDict(frozen=True)

    name: str
    position: int
    job_id: UUID
    version: int | None = None
    type: str | None = None
    error: str
    since: datetime
    checked_at: datetime | None = None
    attempts: int = 1


class ClearedFault(BaseModel):
    """A stop the projector got past: `voided` when an admin voided the event, else it was applied."""

    model_config = ConfigDict(frozen=True)

    position: int
    job_id: UUID
    since: datetime
    voided: bool


async def fetch_void_targets(executor: Executor, job_ids: Sequence[UUID] | None = None) -> list[VoidTarget]:
    """The events voided among these jobs (every voided event when None)."""
    if job_ids is None:
        rows = await fetch_all(executor, "void_targets_all")
    elif not job_ids:
        return []
    else:
        rows = await fetch_all(executor, "void_targets_of_jobs", job_ids=list(job_ids))
    return [(r["position"], r["job_id"], r["type"]) for r in rows]


async def record_fault(executor: Executor, name: str, event: Event, error: str) -> tuple[bool, ProjectorFault]:
    """Record that projector `name` stops at `event`; (True when it was not stopped there before, the stop)."""
    row = await fetch_optional(executor, "projector_fault_record", name=name, position=event.position,
                               job_id=event.job_id, version=event.version, type=str(event.type), error=error[:2000])
    if row is None:
        raise LookupError(f"no projection checkpoint named {name!r}")
    fault = ProjectorFault(name=name, position=event.position, job_id=event.job_id, version=event.version,
                           type=str(event.type), error=error[:2000], since=row["fault_since"],
                           attempts=row["fault_attempts"])
    return bool(row["new_fault"]), fault


async def clear_fault(executor: Executor, name: str) -> ClearedFault | None:
    """Clear the stop if the checkpoint has passed its event; what it was, or None."""
    row = await fetch_optional(executor, "projector_fault_clear", name=name)
    return ClearedFault.model_validate(dict(row.items())) if row else None


async def get_fault(executor: Executor, name: str) -> ProjectorFault | None:
    """Where projector `name` is stopped, or None while it projects."""
    row = await fetch_optional(executor, "projector_fault_get", name=name)
    return ProjectorFault.model_validate(dict(row.items())) if row else None


async def void_event(executor: Executor, position: int, reason: str) -> Event:
    """Append an admin's `void` of the event at `position` (vjm.void_event); the stored void."""
    row = await fetch_one(executor, "event_void", position=position, reason=reason)
    return event_from_row(row)
