"""The public data shapes of the VideoJobManager: what callers pass in and get back."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from statemachine import EnhancementLevel, Platform, QualityPreset, State, Trigger, ValidationError
from statemachine.payload_rules import LABEL_PATTERN, MAX_REASON, MAX_WORKER_ID, NONBLANK_LABEL_PATTERN, rules_of
from statemachine.payloads import field_type
from statemachine.validation import MAX_TEAM_NAME, MAX_USER_ID, METADATA_FIELDS
from store.jobs import ClaimLatencyRow, PlatformRow
from store.leases import QueueDepth
from store.models import Event
from store.projections import JobChange, JobRow, StuckJob
from store.teams import Team as TeamRow
from store.teams import TeamMember
from store.workers import RegisteredWorker

# Also the domain's shapes the adapters speak in, from the layers below (one import point for
# them): an event of the log, a change of the change feed, a team membership, the enumerations of
# the payloads, and the rule table the request schemas are built from.
__all__ = [
    "Event", "JobChange", "TeamMember", "QueueDepth", "StuckJob", "RegisteredWorker", "EnhancementLevel", "Platform", "QualityPreset", "State", "Trigger",
    "rules_of", "field_type", "MAX_REASON", "MAX_USER_ID", "MAX_TEAM_NAME", "MAX_WORKER_ID", "METADATA_FIELDS", "LABEL_PATTERN", "NONBLANK_LABEL_PATTERN", "iso_date_only", "CURSOR_PATTERN", "JOB_STATUSES", "Job", "JobFilters", "JobPage", "encode_cursor", "decode_cursor",
    "Attempt", "PlatformStats", "DailyStats", "JobStats", "ClaimLatency", "BulkResult", "Team", "HistoryReport", "EventPage",
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
    scheduled: bool = False  # only queued jobs held back by a run_at still ahead

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

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _iso_only(cls, value: Any) -> Any:
        return iso_date_only(value)

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


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def iso_date_only(value: Any) -> Any:
    """An ISO 8601 date or date-time, as the schema says: not a number of seconds (pydantic's lax
    reading of '0.5' as a Unix time)."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("must be an ISO 8601 date or date-time, not a number")
    return value


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


# A keyset cursor: the row's created_at in microseconds since the epoch (UTC), a dot, its job id
# as 32 hex digits. Every string of this shape is a cursor (the OpenAPI document gives the pattern,
# so a client or a fuzzer can tell a valid one from the schema alone).
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(created_at: datetime, job_id: UUID) -> str:
    """The keyset cursor for the row after (created_at, job_id)."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{job_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (created_at, job_id) a cursor names; ValidationError if it does not have a cursor's shape."""
    if not isinstance(cursor, str) or not _CURSOR.match(cursor):
        raise ValidationError("cursor is not valid: microseconds, a dot, 32 hex digits", field="cursor")
    micros, job = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), UUID(hex=job)


class Attempt(BaseModel):
    """A job handed to a worker: `attempt` is the token that complete/fail/progress must name."""

    model_config = ConfigDict(frozen=True)

    job_id: UUID
    attempt: int
    worker_id: str | None
    job: Job


class PlatformStats(PlatformRow):
    """Jobs of one platform by status."""


class ClaimLatency(ClaimLatencyRow):
    """How long one platform's jobs waited in the queue before a worker claimed them, over a window of
    hours: claims (start events), the exact median, 95th percentile and longest wait, in seconds. A
    wait counts from when the job became claimable for that attempt: when it was queued (created,
    retried, requeued, timed out, released), or its run_at or retry_after when later."""


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

