"""The rows of the read models as they leave store/: frozen pydantic models, keys and column orders, and what a fold returns.

JOB_COLUMNS, STATS_FIELDS, PLATFORM_FIELDS and DAILY_FIELDS are the column orders the
projector's counters and the queries of sql/queries/listeners.sql share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ..models import Event

StatsKey = tuple[str, str]            # (scope, scope_id)
DailyKey = tuple[str, str, date]      # (scope, scope_id, day)
PlatformKey = tuple[str, str, str]    # (scope, scope_id, platform_target)

JOB_COLUMNS = (
    "job_id", "user_id", "team_id", "status", "attempt", "attempts_left", "max_attempts", "worker_id", "idempotency_key",
    "original_filename", "original_filesize", "clip_count", "quality_preset", "enhancement_level",
    "platform_target", "priority", "run_at", "progress_percent", "clips_done", "output_paths", "error_message", "created_at",
    "started_at", "completed_at", "cancelled_at", "processing_time", "last_activity_at", "version", "last_position",
)
# Columns of vjm.jobs the database computes (after JOB_COLUMNS in the table): never written, never folded.
GENERATED_JOB_COLUMNS = ("activity_minute",)
# Deltas and totals: total, queued, processing, completed, failed, cancelled, timed, processing ms.
STATS_FIELDS = ("total_jobs", "queued_jobs", "processing_jobs", "completed_jobs", "failed_jobs",
                "cancelled_jobs", "timed_jobs", "total_processing_ms")
# Per scope and platform: the first six of STATS_FIELDS (a job's contribution, cut short).
PLATFORM_FIELDS = STATS_FIELDS[:6]
DAILY_FIELDS = ("completed_jobs", "failed_jobs", "cancelled_jobs", "processing_ms")


class JobRow(BaseModel):
    """One row of vjm.jobs: the current state of a job that is not deleted."""

    model_config = ConfigDict(frozen=True)

    job_id: UUID
    user_id: str
    team_id: UUID | None
    status: str
    attempt: int
    attempts_left: int
    max_attempts: int
    worker_id: str | None
    idempotency_key: str | None = None  # the create's: the same key from the same user returns this job
    original_filename: str
    original_filesize: int
    clip_count: int
    quality_preset: str
    enhancement_level: str
    platform_target: str
    priority: int = 0
    run_at: datetime | None = None  # not claimable before
    progress_percent: float
    clips_done: int
    output_paths: list[str] | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None  # completed or failed
    cancelled_at: datetime | None
    processing_time: float | None  # the last attempt's, to complete or fail
    last_activity_at: datetime
    version: int
    last_position: int


class Checkpoint(BaseModel):
    """Where a projector has got to in commit order, and its change-feed counter."""

    model_config = ConfigDict(frozen=True)

    name: str
    xact_id: int
    position: int
    change_seq: int
    events: int

    @property
    def cursor(self) -> tuple[int, int]:
        """(xact_id, position) of the last applied event."""
        return (self.xact_id, self.position)


class JobChange(BaseModel):
    """One entry of the change feed: a job's state after an applied batch."""

    model_config = ConfigDict(frozen=True)

    seq: int
    xact_id: int
    position: int
    job_id: UUID
    user_id: str
    team_id: UUID | None
    status: str
    version: int
    changed_at: datetime | None = None


class StuckJob(BaseModel):
    """A processing job idle for longer than the timeout, as the projection last saw it."""

    model_config = ConfigDict(frozen=True)

    job_id: UUID
    version: int
    attempt: int
    attempts_left: int
    idle_seconds: float


class LagSample(BaseModel):
    """How far a cursor is behind the log, and what holds the commit-safe horizon back."""

    model_config = ConfigDict(frozen=True)

    xmin: int
    events_behind: int
    seconds_behind: float
    held_events: int
    held_seconds: float
    blocking_pid: int | None
    blocking_state: str | None = None           # e.g. 'idle in transaction'; None when not visible to the caller
    blocking_xact_seconds: float | None = None  # age of its transaction; None when not visible to the caller


class Difference(BaseModel):
    """One row that differs between a live read model and its replay or recount."""

    model_config = ConfigDict(frozen=True)

    table: str
    key: str
    kind: str  # missing (in live), extra (in live), different
    columns: tuple[str, ...] = ()
    live: dict[str, Any] | None = None
    expected: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FoldedRows:
    """The rows a batch leaves (plain dicts; None = deleted) and what only the events tell: the projector's
    hot path writes these and derives the counters and the change feed in SQL (listeners/batch.py)."""

    rows: dict[UUID, dict[str, Any] | None]  # every touched job after the batch (JobRow's fields)
    last_events: dict[UUID, Event]  # the last event of each touched job
    daily: dict[DailyKey, list[int]]  # deltas, see store.projections.DAILY_FIELDS
    transitions: dict[str, int]     # events of the batch, by type (voided too)


@dataclass(frozen=True, slots=True)
class Fold:
    """What a batch of events does to the read models."""

    rows: dict[UUID, JobRow | None]          # every touched job after the batch; None = deleted
    last_events: dict[UUID, Event]           # the last event of each touched job
    stats: dict[StatsKey, list[int]]         # deltas, see store.projections.STATS_FIELDS
    daily: dict[DailyKey, list[int]]         # deltas, see store.projections.DAILY_FIELDS
    platforms: dict[PlatformKey, list[int]] = field(default_factory=dict)  # deltas, PLATFORM_FIELDS
    transitions: dict[str, int] = field(default_factory=dict)  # events of the batch, by type (voided too)


def scope_owner(scope: str, scope_id: str) -> tuple[str | None, UUID | None]:
    """(user_id, team_id) columns of a stats row ('member' scope ids are '<team id>:<owner>')."""
    if scope == "user":
        return scope_id, None
    if scope == "member":
        team, _, user = scope_id.partition(":")
        return user, UUID(team)
    return None, UUID(scope_id)
