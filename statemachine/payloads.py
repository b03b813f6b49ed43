"""Event payloads: one frozen pydantic model per event type, with real bounds.

These are the only shapes ever written into `vjm.job_events.data`.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated, Any, NotRequired

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from .errors import ValidationError
from .machine import Trigger

MAX_FILENAME = 255
MAX_OUTPUT_PATHS = 100
MAX_PATH_LENGTH = 1024
MAX_ERROR_TEXT = 4000
MAX_REASON = 500
MAX_WORKER_ID = 128
MAX_ATTEMPTS_LIMIT = 20


class Platform(StrEnum):
    """Where the clips are published."""

    TIKTOK = "tiktok"
    INSTAGRAM = "instagram"
    YOUTUBE_SHORTS = "youtube_shorts"


class QualityPreset(StrEnum):
    """Output quality chosen by the user."""

    DRAFT = "draft"
    STANDARD = "standard"
    PRO = "pro"
    ULTRA = "ultra"


class EnhancementLevel(StrEnum):
    """How much post-processing (denoise, upscale, colour) is applied."""

    NONE = "none"
    BASIC = "basic"
    ADVANCED = "advanced"
    MAXIMUM = "maximum"


def _has_control_chars(text: str) -> bool:
    if text.isprintable():  # fast path: every control, format, surrogate, private or unassigned char is not
        return False
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in text)


def _clean_filename(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if "/" in value or "\\" in value:
        raise ValueError("must not contain path separators")
    if _has_control_chars(value):
        raise ValueError("must not contain control or format characters")
    if value in {".", ".."}:
        raise ValueError("must be a file name")
    return value


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Filename = Annotated[str, Field(min_length=1, max_length=MAX_FILENAME)]
OutputPath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_LENGTH)]
Text = Annotated[str, Field(max_length=MAX_REASON)]


class Payload(BaseModel):
    """Base: frozen, strict about unknown fields, no silent coercion of strings."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, str_strip_whitespace=False)


# A create's fields, shared by CreateData and CreateFields (the same rules, two shapes).
UploadFilename = Annotated[Filename, AfterValidator(_clean_filename)]
FileSize = Annotated[int, Field(strict=True, ge=0, le=2**53)]
ClipCount = Annotated[int, Field(strict=True, ge=1, le=50)]
MaxAttempts = Annotated[int, Field(strict=True, ge=1, le=MAX_ATTEMPTS_LIMIT)]
DEFAULT_MAX_ATTEMPTS = 3


class CreateData(Payload):
    """The metadata of a new upload."""

    original_filename: UploadFilename
    original_filesize: FileSize
    clip_count: ClipCount
    quality_preset: QualityPreset
    enhancement_level: EnhancementLevel
    platform_target: Platform
    max_attempts: MaxAttempts = DEFAULT_MAX_ATTEMPTS


class CreateFields(TypedDict):
    """CreateData's fields as a plain dict: bulk creates validate straight into the stored form.

    Keep the two in step (tests/unit/test_bulk_validation.py checks that they declare the
    same fields and accept, refuse and store alike).
    """

    __pydantic_config__ = ConfigDict(extra="forbid", strict=False, str_strip_whitespace=False,
                                     use_enum_values=True)

    original_filename: UploadFilename
    original_filesize: FileSize
    clip_count: ClipCount
    quality_preset: QualityPreset
    enhancement_level: EnhancementLevel
    platform_target: Platform
    max_attempts: NotRequired[MaxAttempts]


class StartData(Payload):
    """A processor took the job."""

    worker_id: Annotated[str, Field(min_length=1, max_length=MAX_WORKER_ID)] | None = None

    _worker = field_validator("worker_id")(classmethod(lambda cls, v: v if v is None else _clean_text(v)))


class ProgressData(Payload):
    """How far the current attempt has got."""

    percent: Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)] | None = None
    clips_done: Annotated[int, Field(strict=True, ge=0, le=50)] | None = None


class CompleteData(Payload):
    """The clips were produced."""

    output_paths: Annotated[list[OutputPath], Field(max_length=MAX_OUTPUT_PATHS)]
    processing_time: Annotated[float, Field(strict=True, ge=0, le=7 * 24 * 3600, allow_inf_nan=False)] | None = None

    @field_validator("output_paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if _has_control_chars(path):
                raise ValueError("paths must not contain control characters")
        return paths


class FailData(Payload):
    """The processor gave up on this attempt."""

    error: Annotated[str, Field(min_length=1, max_length=MAX_ERROR_TEXT)]

    _error = field_validator("error")(classmethod(lambda cls, v: _clean_text(v)))


class ReasonData(Payload):
    """Cancel, retry and delete may say why."""

    reason: Text | None = None


class TimeOutData(Payload):
    """The stuck detector reset the job."""

    reason: Text | None = None
    idle_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class MetadataData(Payload):
    """A change to the job's metadata; at least one field."""

    original_filename: Filename | None = None
    clip_count: Annotated[int, Field(strict=True, ge=1, le=50)] | None = None
    quality_preset: QualityPreset | None = None
    enhancement_level: EnhancementLevel | None = None
    platform_target: Platform | None = None

    _filename = field_validator("original_filename")(
        classmethod(lambda cls, v: v if v is None else _clean_filename(v)))

    @pydantic.model_validator(mode="after")
    def _not_empty(self) -> MetadataData:
        if not self.model_dump(exclude_none=True):
            raise ValueError("at least one metadata field is required")
        return self


PAYLOADS: dict[Trigger, type[Payload]] = {
    Trigger.CREATE: CreateData,
    Trigger.START: StartData,
    Trigger.PROGRESS: ProgressData,
    Trigger.COMPLETE: CompleteData,
    Trigger.FAIL: FailData,
    Trigger.CANCEL: ReasonData,
    Trigger.RETRY: ReasonData,
    Trigger.TIME_OUT: TimeOutData,
    Trigger.UPDATE_METADATA: MetadataData,
    Trigger.DELETE: ReasonData,
}


def validate_payload(trigger: Trigger | str, data: dict[str, Any] | Payload | None) -> Payload:
    """Parse `data` for `trigger`, raising a ValidationError that names the field."""
    try:
        trigger = Trigger(trigger)
    except ValueError:
        raise ValidationError(f"unknown trigger {trigger!r}", field="trigger") from None
    model = PAYLOADS[trigger]
    if isinstance(data, model):
        return data
    if data is not None and not isinstance(data, dict):
        raise ValidationError(f"{trigger} data must be an object", field="data")
    try:
        return model.model_validate(data or {})
    except pydantic.ValidationError as exc:
        raise to_validation_error(exc) from exc


_CREATE_BATCH = pydantic.TypeAdapter(list[CreateFields])


def validate_creates(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Many create payloads (dicts) at once, each in the form validate_payload("create", item) stores.

    The rules of CreateData, in one call into pydantic for the whole list and no model
    in between (model per item, then dump, was a third of a bulk create's time). A
    ValidationError names `<index>.<field>` of the first bad item.
    """
    try:
        payloads = _CREATE_BATCH.validate_python(items)
    except pydantic.ValidationError as exc:
        raise to_validation_error(exc) from exc
    for payload in payloads:
        if "max_attempts" not in payload:
            payload["max_attempts"] = DEFAULT_MAX_ATTEMPTS
    return payloads


# Tags pydantic puts in an error location for the member of a union; they are not field names.
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "date", "datetime", "uuid", "list", "dict", "none"})


def _field_path(loc: tuple) -> str | None:
    parts = [str(p) for p in loc
             if isinstance(p, int) or (p not in _UNION_TAGS and "[" not in p and "-" not in p)]
    return ".".join(parts) or None


def to_validation_error(exc: pydantic.ValidationError) -> ValidationError:
    """Turn pydantic's error into ours, naming the first offending field."""
    errors = exc.errors(include_url=False, include_input=False)
    field = _field_path(errors[0]["loc"])
    return ValidationError(f"{field or 'input'}: {errors[0]['msg']}", field=field,
                           errors=[{"field": _field_path(e["loc"]), "message": e["msg"]} for e in errors])
