"""Bodies of the consoles' endpoints: the operator's overview and bulk retry, the auditor's event search."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from videojobs import BulkResult, JobStats
from videojobs.models import LABEL_PATTERN, MAX_USER_ID, EnhancementLevel, Event, Platform, QualityPreset, iso_date_only

from .health import ComponentHealth
from .schemas import Body, UserId


def _label(value: str | None) -> str | None:
    """The label rule the document's pattern states (one line, nothing invisible), held by the server too."""
    if value is not None and re.match(LABEL_PATTERN, value) is None:
        raise ValueError("must not contain control, format or line separator characters")
    return value


OwnerQuery = Annotated[str | None, Query(min_length=1, max_length=MAX_USER_ID, description="Only this user's jobs",
                                        json_schema_extra={"pattern": LABEL_PATTERN}), AfterValidator(_label)]
ActorQuery = Annotated[str | None, Query(min_length=1, max_length=200, description="Who did it (the event's actor)",
                                        json_schema_extra={"pattern": LABEL_PATTERN}), AfterValidator(_label)]


Instant = Annotated[AwareDatetime, BeforeValidator(iso_date_only)]  # an RFC 3339 instant, not a number of seconds


class QueueRow(BaseModel):
    """The run queue for one platform and priority."""

    platform_target: str
    priority: int
    queued: int = Field(description="Jobs queued (claimable now or held back by a run_at)")
    claimable: int = Field(description="Jobs a worker may claim now")
    oldest_claimable_seconds: float = Field(description="How long the oldest claimable job has waited")


class StuckRow(BaseModel):
    """A processing job with no activity (and no lease) for longer than the stuck timeout."""

    job_id: UUID
    version: int
    attempt: int
    attempts_left: int
    idle_seconds: float
    timeout_seconds: float = Field(description="The stuck timeout: the detector's next pass times the job out")


class Overview(BaseModel):
    """`GET /api/v1/admin/overview`: what the operator console shows besides the job list and the workers."""

    stats: JobStats = Field(description="get_job_stats() of every job (the counters, not a count)")
    queue: list[QueueRow]
    oldest_queued_seconds: float | None = Field(description="The wait of the oldest claimable job; null: none")
    projector: ComponentHealth = Field(description="Projection lag, and the horizon: who holds it back")
    detector: ComponentHealth
    stuck: list[StuckRow]
    stuck_timeout_seconds: float
    generated_at: datetime


class RetryFailedRequest(Body):
    """Retry the failed jobs that match these filters (a filter left out matches every job)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"platform_target": "instagram", "user_id": "alice", "reason": "codec fixed"}]})

    platform_target: Platform | None = None
    quality_preset: QualityPreset | None = None
    enhancement_level: EnhancementLevel | None = None
    date_from: Instant | None = Field(None, description="Created at or after")
    date_to: Instant | None = Field(None, description="Created at or before; not before date_from (422)")
    user_id: UserId | None = None
    team_id: UUID | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500, description="Recorded in each retry event")] | None = None
    limit: Annotated[int, Field(strict=True, ge=1, le=10_000)] = 10_000


class RetryFailedResponse(BaseModel):
    """What bulk retry did: one result per matched job (applied, or the typed error that stopped it)."""

    matched: int = Field(description="Failed jobs that matched the filters (at most `limit`)")
    retried: int = Field(description="Of those, the ones queued again")
    more: bool = Field(description="As many matched as `limit`: there may be more, send it again")
    results: list[BulkResult]


class EventSearchPage(BaseModel):
    """A page of audit events, oldest first. Pass `next_cursor` back as `after` for the next page."""

    items: list[Event]
    next_cursor: int | None = None
