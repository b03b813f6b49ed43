"""Request and response bodies of the HTTP API, with the examples the OpenAPI document shows.

Request models describe the shapes; the manager (and the database behind it) still
validates every value, and its ValidationError becomes the same 422 problem.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from videojobs import Attempt, BulkResult, Job
from videojobs.models import (
    LABEL_PATTERN,
    NONBLANK_LABEL_PATTERN,
    EnhancementLevel,
    Event,
    Platform,
    QualityPreset,
)

from .payload_types import (
    ClipCount,
    ClipsDone,
    FailureText,
    FileName,
    FileSize,
    IdempotencyKey,
    MaxAttempts,
    OutputPaths,
    Percent,
    Phase,
    Priority,
    ProcessingTime,
    WorkerId,
)

JOB_EXAMPLE: dict[str, Any] = {
    "job_id": "9b2f6c1e-3f7a-4d1e-9a57-0c4f2b1d8e11", "user_id": "user-123", "team_id": None, "status": "queued",
    "attempt": 0, "attempts_left": 3, "max_attempts": 3, "worker_id": None, "idempotency_key": None,
    "original_filename": "holiday.mp4",
    "original_filesize": 104857600, "clip_count": 5, "quality_preset": "pro", "enhancement_level": "basic",
    "platform_target": "tiktok", "priority": 0, "run_at": None, "progress_percent": 0.0, "clips_done": 0, "output_paths": None,
    "error_message": None, "created_at": "2025-01-01T12:00:00Z", "started_at": None, "completed_at": None,
    "cancelled_at": None, "processing_time": None, "last_activity_at": "2025-01-01T12:00:00Z", "version": 1, "last_position": 42}


# Numbers that are not payload fields: strict too (JSON integers only; floats also take integers).
Count = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
MAX_WAIT = 30.0  # seconds: the longest a claim or a heartbeat may be held (the server may cap it lower)
Wait = Annotated[float, Field(strict=True, ge=0, le=MAX_WAIT, allow_inf_nan=False,
                              description="Seconds the server may hold the answer (long poll); 0 answers at once")]
LeaseSeconds = Annotated[float, Field(strict=True, ge=0.5, le=86400, allow_inf_nan=False)]
def _label(value: str) -> str:
    """A user id keeps the label rule the document's pattern states (the manager does not check it
    for the user a service names; store.identity does for tokens and team members)."""
    if re.match(LABEL_PATTERN, value) is None:
        raise ValueError("must not contain control, format or line separator characters")
    return value


UserId = Annotated[str, Field(min_length=1, max_length=128, json_schema_extra={"pattern": LABEL_PATTERN}),
                   AfterValidator(_label)]
Reason = Annotated[str, Field(max_length=1000)]


def _instant_text_only(value: Any) -> Any:
    if not isinstance(value, str):  # pydantic would read a number as seconds since the epoch
        raise ValueError("must be an RFC 3339 date-time string")
    return value


RunAt = Annotated[AwareDatetime, BeforeValidator(_instant_text_only)]


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused (422 naming them)."""

    model_config = ConfigDict(extra="forbid")


class CreateJobRequest(Body):
    """A new upload to cut into clips. `user_id` is the caller for end users; services must name it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "original_filename": "holiday.mp4", "original_filesize": 104857600, "clip_count": 5,
        "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"}]})

    original_filename: FileName
    original_filesize: FileSize
    clip_count: ClipCount
    quality_preset: QualityPreset
    enhancement_level: EnhancementLevel
    platform_target: Platform
    team_id: UUID | None = None
    max_attempts: MaxAttempts = 3
    priority: Priority = Field(0, description="0-9: higher is claimed first")
    run_at: RunAt | None = Field(None, description="Not claimed before this instant (RFC 3339, with its offset)")
    user_id: UserId | None = Field(None, description="Owner of the job: service callers only (end users own "
                                                     "the jobs they create)")
    idempotency_key: IdempotencyKey | None = Field(None, description="As the Idempotency-Key header; both given: equal")


class RescheduleRequest(Body):
    """A queued job's new priority, or when it may run, or both (a run_at already past: claimable at once)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"required": ["priority"]}, {"required": ["run_at"]}],
        "examples": [{"priority": 9}, {"run_at": "2030-01-01T08:00:00Z"}]})

    priority: Priority = Field(None, description="0-9: higher is claimed first")  # type: ignore[assignment]
    run_at: RunAt = Field(None, description="Not claimed before this instant (RFC 3339, with its offset)")  # type: ignore[assignment]
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1, description="Refused (409) unless the job is "
                                                                              "at this version")


class JobPageResponse(BaseModel):
    """One page of jobs. Pass `next_cursor` back as `cursor` for the next page (keyset paging)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [JOB_EXAMPLE], "total": 1, "limit": 50, "offset": 0, "next_cursor": None}]})

    items: list[Job]
    total: int
    limit: int
    offset: int
    next_cursor: str | None = None


class JobHistory(BaseModel):
    """Every event of one job, oldest first (deleted jobs too)."""

    job_id: UUID
    events: list[Event]


class ClaimRequest(Body):
    """A worker asks for up to `limit` queued jobs of its platforms, highest priority first, then oldest. With `wait`, the
    answer is held until a job of one of them is claimable (at most `wait` seconds, or the server's own cap: it
    may answer sooner, with no jobs)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"worker_id": "worker-7", "limit": 2, "platforms": ["tiktok", "instagram"], "lease_seconds": 60,
         "wait": 25}]})

    worker_id: WorkerId
    limit: Annotated[int, Field(strict=True, ge=1, le=100)] = 1
    platforms: Annotated[list[Platform], Field(min_length=1, max_length=16)] | None = Field(
        None, description="The platforms whose jobs it takes; null (and no platform_target): every platform")
    platform_target: Platform | None = Field(
        None, description="One platform: the same as `platforms: [it]`; with `platforms`, either one's jobs")
    lease_seconds: LeaseSeconds | None = Field(
        None, description="Each started job holds a lease this long, which the worker renews (heartbeat); "
                          "null: the stuck detector's idle timeout applies")
    wait: Wait = 0.0

    def platform_choice(self) -> list[str] | None:
        """The platforms claimed (`platforms` and `platform_target` together); None: every platform."""
        named = [*(self.platforms or ()), *([self.platform_target] if self.platform_target else [])]
        return [platform.value for platform in named] or None


class ClaimResponse(BaseModel):
    """The jobs handed to the worker, each with its attempt token (empty when nothing is queued)."""

    attempts: list[Attempt]


class ProgressRequest(Body):
    """Progress of the current attempt."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"attempt": 1, "percent": 40.0, "clips_done": 2, "worker_id": "worker-7"}]})

    attempt: Count
    percent: Percent | None = None
    clips_done: ClipsDone | None = None
    phase: Phase | None = None
    worker_id: WorkerId | None = None


class CompleteRequest(Body):
    """The attempt produced its clips."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"attempt": 1, "output_paths": ["/out/clip1.mp4", "/out/clip2.mp4"], "processing_time": 42.5}]})

    attempt: Count
    output_paths: OutputPaths
    processing_time: ProcessingTime | None = None
    worker_id: WorkerId | None = None


class Completion(Body):
    """One attempt of a batch that produced its clips."""

    model_config = ConfigDict(extra="forbid")

    job_id: UUID
    attempt: Count
    output_paths: OutputPaths
    processing_time: ProcessingTime | None = None


class CompleteBatchRequest(Body):
    """Many attempts that produced their clips, reported together (what claim handed out)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"worker_id": "worker-7", "completions": [
            {"job_id": "0190d3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", "attempt": 1, "output_paths": ["/out/a.mp4"],
             "processing_time": 12.5}]}]})

    completions: Annotated[list[Completion], Field(min_length=1, max_length=1000)]
    worker_id: WorkerId | None = None


class CompleteBatchResponse(BaseModel):
    """One result per completion, in order: the completed job, or the error that refused it."""

    results: list[BulkResult]
    applied: int


class FailRequest(Body):
    """The attempt failed: the job is `failed` until someone retries it (a stuck attempt's time_out re-queues it while attempts are left)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"attempt": 1, "error": "ffmpeg exited with status 1"}]})

    attempt: Count
    error: FailureText
    worker_id: WorkerId | None = None


class JobChangeMessage(BaseModel):
    """The `data` of one `job_change` server-sent event; the event's `id` is `seq`."""

    seq: int
    position: int
    job_id: UUID
    user_id: str
    team_id: UUID | None
    status: str
    version: int
    changed_at: datetime | None = None


class CreateTeamRequest(Body):
    """A new team. End users own the teams they create; services must name `owner_id`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "studio"}]})

    name: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": NONBLANK_LABEL_PATTERN})
    owner_id: UserId | None = Field(None, description="The owner (and first member): service callers only")


class AddMemberRequest(Body):
    """A user to add to a team (its owner or an admin may)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"user_id": "bob"}]})

    user_id: UserId
    role: Literal["member", "owner"] = "member"
