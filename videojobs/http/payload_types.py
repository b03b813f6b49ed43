"""The field types of request bodies, each the type the payload rule table gives that field
(statemachine.payload_rules): strict numbers (no `true`, no `"1"`), bounds, lengths and refused
characters, as the database has them.

The rule table builds these types when the module loads, which a static type checker cannot
follow; for it, each is declared as the plain Python type it narrows (the TYPE_CHECKING
branch). tests/http/test_openapi_document.py holds the document to the rule table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, TypeAdapter

from videojobs.models import Trigger, field_type, rules_of


def payload_type(trigger: Trigger, key: str) -> Any:
    """The type the payload rule table gives this key of this trigger's payload."""
    return field_type(next(r for r in rules_of(trigger) if r.key == key))


def payload_pattern(trigger: Trigger, key: str) -> str:
    """The `pattern` the document states for a payload string (for a query parameter that carries one)."""
    return str(TypeAdapter(payload_type(trigger, key)).json_schema()["pattern"])


if TYPE_CHECKING:
    FileName = str
    FileSize = int
    ClipCount = int
    MaxAttempts = int
    Priority = int
    IdempotencyKey = str
    OutputPaths = list[str]
    ProcessingTime = float
    WorkerId = str
    Percent = float
    ClipsDone = int
    Phase = str
    FailureText = str
    RetryReason = str
    CancelReason = str
    NewFileName = str | None
    NewClipCount = int | None
    NewQualityPreset = str | None
    NewEnhancementLevel = str | None
    NewPlatform = str | None
else:
    FileName = payload_type(Trigger.CREATE, "original_filename")
    FileSize = payload_type(Trigger.CREATE, "original_filesize")
    ClipCount = payload_type(Trigger.CREATE, "clip_count")
    MaxAttempts = payload_type(Trigger.CREATE, "max_attempts")
    Priority = payload_type(Trigger.CREATE, "priority")
    IdempotencyKey = payload_type(Trigger.CREATE, "idempotency_key")
    # The parser's bound (50 paths), under the payload rule's; each path the rule's own type.
    OutputPaths = Annotated[list[payload_type(Trigger.COMPLETE, "output_paths").__origin__.__args__[0]],
                            Field(max_length=50)]
    ProcessingTime = payload_type(Trigger.COMPLETE, "processing_time")
    WorkerId = payload_type(Trigger.START, "worker_id")  # the id a start records: any text but NUL, 1-128
    Percent = payload_type(Trigger.PROGRESS, "percent")
    ClipsDone = payload_type(Trigger.PROGRESS, "clips_done")
    Phase = payload_type(Trigger.PROGRESS, "phase")
    FailureText = payload_type(Trigger.FAIL, "error")
    RetryReason = payload_type(Trigger.RETRY, "reason")
    CancelReason = payload_type(Trigger.CANCEL, "reason")
    NewFileName = payload_type(Trigger.UPDATE_METADATA, "original_filename")
    NewClipCount = payload_type(Trigger.UPDATE_METADATA, "clip_count")
    NewQualityPreset = payload_type(Trigger.UPDATE_METADATA, "quality_preset")
    NewEnhancementLevel = payload_type(Trigger.UPDATE_METADATA, "enhancement_level")
    NewPlatform = payload_type(Trigger.UPDATE_METADATA, "platform_target")
