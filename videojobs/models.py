"""The public data shapes of the VideoJobManager: what callers pass in and get back."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from statemachine import EnhancementLevel, Platform, QualityPreset, State, Trigger, ValidationError
from statemachine.payload_rules import rules_of
from statemachine.payloads import field_type
from store.jobs import PlatformRow
from store.models import Event
from store.projections import JobChange, JobRow
from store.teams import Team as TeamRow
from store.teams import TeamMember

# Also the domain's shapes the adapters speak in, from the layers below (one import point for
# them): an event of the log, a change of the change feed, a team membership, the enumerations of
# the payloads, and the rule table the request schemas are built from.
__all__ = [
    "Event", "JobChange", "TeamMember", "EnhancementLevel", "Platform", "QualityPreset", "State", "Trigger",
    "rules_of", "field_type", "JOB_STATUSES", "Job", "JobFilters", "JobPage", "encode_cursor", "decode_cursor",
    "Attempt", "PlatformStats", "DailyStats", "JobStats", "BulkResult", "Team", "HistoryReport", "EventPage",
]

JOB_STATUSES = (State.QUEUED, State.PROCESSING, State.COMPLETED, State.FAILED, State.CANCELLED)


class Job(JobRow):
    """A video job as the projection holds it (metadata, status, attempt, timestamps, outputs)."""

    @property
    def id(self) -> UUID:
        """The job id (alias of job_id, as the original specification names it)."""
        return self.job_id


class JobFilters(BaseModel):
    """Filters of a job list. Dates are inclusive days or exact instants; newest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: list[State] | None = None
    platform_target: Platform | None = None
    quality_preset: QualityPreset | None = None
    enhancement_level: EnhancementLevel | None = None
    date_from: datetime | date | None = None
    date_to: datetime | date | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("status")
    @classmethod
    def _job_statuses(cls, value: list[State] | None) -> list[State] | None:
        if value is not None:
            if not value or len(value) > len(JOB_STATUSES):
                raise ValueError("give 1 to 5 statuses")
            if any(s not in JOB_STATUSES for s in value):
                raise ValueError(f"status must be one of {', '.join(JOB_STATUSES)}")
        return value

    @field_validator("date_to")
    @classmethod
    def _ordered(cls, value: datetime | date | None, info: ValidationInfo) -> datetime | date | None:
        start, end = _instant(info.data.get("date_from"), end=False), _instant(value, end=True)
        if start and end and start >= end:
            raise ValueError("date_to must not be before date_from")
        return value

    def created_from(self) -> datetime | None:
        """Lower bound (inclusive) as an instant; a plain date means its first moment, UTC."""
        return _instant(self.date_from, end=False)

    def created_before(self) -> datetime | None:
        """Upper bound (exclusive) as an instant; a plain date includes that whole day, UTC."""
        return _instant(self.date_to, end=True)


def _instant(value: datetime | date | None, *, end: bool) -> datetime | None:
    """An inclusive bound as an instant; `end` turns it into the exclusive instant just after."""
    if value is None:
        return None
    if isinstance(value, datetime):
        instant = value if value.tzinfo else value.replace(tzinfo=UTC)
        return instant + timedelta(microseconds=1) if end else instant
    start = datetime.combine(value, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


class JobPage(BaseModel):
    """One page of jobs, the total matching the filters, and the cursor of the next page."""

    model_config = ConfigDict(frozen=True)

    items: list[Job]
    total: int
    limit: int
    offset: int
    next_cursor: str | None = None


def encode_cursor(created_at: datetime, job_id: UUID) -> str:
    """An opaque keyset cursor for the row after (created_at, job_id)."""
    raw = json.dumps([created_at.isoformat(), str(job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (created_at, job_id) inside a cursor; ValidationError if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created_at), UUID(job_id)
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValidationError("cursor is not valid", field="cursor") from None


class Attempt(BaseModel):
    """A job handed to a worker: `attempt` is the token that complete/fail/progress must name."""

    model_config = ConfigDict(frozen=True)

    job_id: UUID
    attempt: int
    worker_id: str | None
    job: Job


class PlatformStats(PlatformRow):
    """Jobs of one platform by status."""


class DailyStats(BaseModel):
    """Finished work of one UTC day."""

    model_config = ConfigDict(frozen=True)

    day: date
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    processing_seconds: float


class JobStats(BaseModel):
    """The specification's statistics, plus a platform breakdown and a daily series."""

    model_config = ConfigDict(frozen=True)

    total_jobs: int
    queued_jobs: int
    processing_jobs: int
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    average_processing_time: float | None
    total_processing_time: float
    by_platform: list[PlatformStats]
    daily: list[DailyStats]


class BulkResult(BaseModel):
    """The outcome for one job of a bulk operation: applied (with the job), or the error."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    ok: bool
    job: Job | None = None
    error: str | None = None
    error_type: str | None = None


class Team(TeamRow):
    """A team: its members see each other's team jobs."""


class HistoryReport(BaseModel):
    """Verification of the tamper-evidence chain."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int
    first_broken_job_id: UUID | None = None
    first_broken_version: int | None = None
    reason: str | None = None


class EventPage(BaseModel):
    """A page of audit events and the cursor of the next page (a position)."""

    model_config = ConfigDict(frozen=True)

    items: list[Any]
    next_cursor: int | None = None

