"""The admin maintenance endpoint's bodies (one per action, told apart by `action`) and its answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from .schemas import Body, Reason


class ResetStuck(Body):
    """Time out processing jobs idle for longer than `older_than_seconds`."""

    action: Literal["reset_stuck"]
    older_than_seconds: Annotated[float, Field(strict=True, ge=0, le=7 * 86400, allow_inf_nan=False)] = 900.0


class BulkUpdate(Body):
    """Move many jobs to one status; the answer has one result per job."""

    action: Literal["bulk_update"]
    job_ids: Annotated[list[UUID], Field(min_length=1, max_length=1000)]
    status: Literal["queued", "processing", "completed", "failed", "cancelled"]
    reason: Reason | None = None
    error: Annotated[str, Field(max_length=4000)] | None = None


class RebuildProjections(Body):
    """Replay every event into fresh tables and swap them in."""

    action: Literal["rebuild_projections"]


class VerifyProjections(Body):
    """Compare the live projection with a replay, and the stats with a recount."""

    action: Literal["verify_projections"]


class VerifyHistory(Body):
    """Recompute the tamper-evidence hash chain of one job or of all events."""

    action: Literal["verify_history"]
    job_id: UUID | None = None


MaintenanceRequest = Annotated[ResetStuck | BulkUpdate | RebuildProjections | VerifyProjections | VerifyHistory,
                               Field(discriminator="action")]


class MaintenanceResponse(BaseModel):
    """What the action did; `result`'s fields depend on the action."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"action": "reset_stuck", "ok": True, "result": {"found": 1, "requeued": 1, "failed": 0, "skipped": 0}},
        {"action": "verify_projections", "ok": True, "result": {"events": 120, "jobs": 30, "differences": []}}]})

    action: str
    ok: bool
    result: dict[str, Any]
