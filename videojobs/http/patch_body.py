"""What `PATCH /api/v1/jobs/{job_id}` takes: the model the route parses, and the union the document states.

PatchJobRequest parses every field of every move (and the route refuses the mixtures). The
OpenAPI document states the body exactly instead (openapi.py puts PATCH_JOB_BODY in place of
PatchJobRequest's schema): one status change with the fields of that move, or a metadata
change naming at least one field. Each move's fields take the parser's own types, narrowed
where the payload rules are narrower (the manager refuses the rest with the same 422), so
that a body the union admits is one the route accepts.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field

from videojobs.models import EnhancementLevel, Platform, QualityPreset

from .payload_types import (
    CancelReason,
    ClipCount,
    FailureText,
    FileName,
    NewClipCount,
    NewEnhancementLevel,
    NewFileName,
    NewPlatform,
    NewQualityPreset,
    OutputPaths,
    ProcessingTime,
    RetryReason,
    WorkerId,
)
from .schemas import Body, Count, Reason

StatusName = Literal["queued", "processing", "completed", "failed", "cancelled"]


class PatchJobRequest(Body):
    """A status change (through the state machine) or a metadata change, not both at once."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "cancelled", "reason": "uploaded the wrong file"},
        {"clip_count": 8, "platform_target": "youtube_shorts", "expected_version": 1}]})

    status: StatusName | None = Field(
        None, description="queued = retry, cancelled = cancel (end users); processing/completed/failed are "
                          "processor moves (service callers)")
    reason: Reason | None = None
    worker_id: WorkerId | None = None
    output_paths: OutputPaths | None = None
    processing_time: ProcessingTime | None = None
    error: Annotated[str, Field(max_length=4000)] | None = None
    attempt: Count | None = None
    original_filename: FileName | None = None
    clip_count: ClipCount | None = None
    quality_preset: QualityPreset | None = None
    enhancement_level: EnhancementLevel | None = None
    platform_target: Platform | None = None
    expected_version: Count | None = Field(
        None, description="Metadata changes only: refuse (409) if the job has moved past this version")


class PatchRetry(Body):
    status: Literal["queued"]
    reason: RetryReason | None = None


class PatchCancel(Body):
    status: Literal["cancelled"]
    reason: CancelReason | None = None


class PatchStart(Body):
    status: Literal["processing"]
    worker_id: WorkerId | None = None


class PatchComplete(Body):
    status: Literal["completed"]
    output_paths: OutputPaths | None = None  # the parser's bound (50), under the payload rule's (100)
    processing_time: ProcessingTime | None = None
    attempt: Count | None = None


class PatchFail(Body):
    status: Literal["failed"]
    error: FailureText
    attempt: Count | None = None


class PatchMetadata(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"required": [name]} for name in
                  ("original_filename", "clip_count", "quality_preset", "enhancement_level", "platform_target")]})

    original_filename: NewFileName = None
    clip_count: NewClipCount = None
    quality_preset: NewQualityPreset = None
    enhancement_level: NewEnhancementLevel = None
    platform_target: NewPlatform = None
    expected_version: Count | None = None


MOVES = (PatchRetry, PatchCancel, PatchStart, PatchComplete, PatchFail)
# The fields each move takes besides `status` (the route refuses any other, even null).
MOVE_FIELDS: dict[str, frozenset[str]] = {
    get_args(move.model_fields["status"].annotation)[0]: frozenset(move.model_fields) - {"status"} for move in MOVES}

PATCH_JOB_BODY = Annotated[
    Annotated[PatchRetry | PatchCancel | PatchStart | PatchComplete | PatchFail, Field(discriminator="status")]
    | PatchMetadata,
    Field(description="A status change (queued = retry, cancelled = cancel for end users; processing, completed, "
                      "failed for service callers), or a metadata change naming at least one field"),
]
