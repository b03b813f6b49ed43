"""Event payloads: one frozen pydantic model per event type, built from the rule table.

These are the only shapes ever written into `vjm.job_events.data`. The rules (keys,
types, bounds, characters) are `statemachine.payload_rules.PAYLOAD_RULES`; the database
enforces the same table with `vjm.payload_ok` (sql/schema/025_payload_rules.sql), so a
raw SQL caller gets no further than Python would let it.
"""

from __future__ import annotations

import functools
import re
import types
from datetime import datetime
from typing import Annotated, Any, NotRequired

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from .errors import ValidationError
from .machine import Trigger
from .payload_rules import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_ATTEMPTS_LIMIT,
    MAX_ERROR_TEXT,
    MAX_FILENAME,
    MAX_OUTPUT_PATHS,
    MAX_PATH_LENGTH,
    MAX_REASON,
    MAX_WORKER_ID,
    REFUSALS,
    SHAPE_RULES,
    Chars,
    EnhancementLevel,
    FieldRule,
    Kind,
    Platform,
    QualityPreset,
    allowed_pattern,
    rules_of,
)

__all__ = ["DEFAULT_MAX_ATTEMPTS", "MAX_ATTEMPTS_LIMIT", "MAX_ERROR_TEXT", "MAX_FILENAME", "MAX_OUTPUT_PATHS",
           "MAX_PATH_LENGTH", "MAX_REASON", "MAX_WORKER_ID", "PAYLOADS", "CompleteData", "CreateData",
           "CreateFields", "EnhancementLevel", "FailData", "MetadataData", "Payload", "Platform", "ProgressData",
           "QualityPreset", "ReasonData", "StartData", "TimeOutData", "VoidData", "field_type", "to_validation_error",
           "validate_creates", "validate_payload"]

def _refusing(chars: Chars) -> AfterValidator:
    match = re.compile(chars.value).search
    message = REFUSALS[chars]

    def check(value: str) -> str:
        if match(value) or (chars is Chars.TIMESTAMP and not _real_instant(value)):
            raise ValueError(message)
        return value
    return AfterValidator(check)


def _real_instant(value: str) -> bool:
    """A day that exists in its month (the pattern lets 2026-02-31 through)."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


@functools.cache
def field_type(rule: FieldRule) -> Any:
    """The pydantic type of one rule (without its optionality): strict numbers (no bools, no
    numeric strings), strict strings with their length and characters, the choice's enum.
    One object per rule, so that CreateData and CreateFields declare identical types."""
    if rule.kind is Kind.CHOICE:
        return rule.choices
    if rule.kind is Kind.INTEGER:
        return Annotated[int, Field(strict=True, ge=rule.minimum, le=rule.maximum)]
    if rule.kind is Kind.NUMBER:
        return Annotated[float, Field(strict=True, ge=rule.minimum, le=rule.maximum, allow_inf_nan=False)]
    text = Annotated[str, Field(strict=True, min_length=rule.min_length, max_length=rule.max_length,
                                json_schema_extra={"pattern": allowed_pattern(rule.chars)}),
                     _refusing(rule.chars)]
    if rule.kind is Kind.STRING:
        return text
    return Annotated[list[text], Field(max_length=rule.max_items)]


class Payload(BaseModel):
    """Base: frozen, strict about unknown fields, no silent coercion of strings."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, str_strip_whitespace=False)


class _AtLeastOne(Payload):
    """A payload that must name at least one field (with a value that is not null)."""

    @pydantic.model_validator(mode="after")
    def _not_empty(self) -> _AtLeastOne:
        if not self.model_dump(exclude_none=True):
            raise ValueError(f"at least one field is required: {', '.join(type(self).model_fields)}")
        return self


def _model(name: str, trigger: Trigger, doc: str) -> type[Payload]:
    fields: dict[str, Any] = {}
    for rule in rules_of(trigger):
        kind = field_type(rule)
        if rule.required:
            fields[rule.key] = (kind, ...)
        elif rule.nullable:
            fields[rule.key] = (kind | None, None)
        else:
            fields[rule.key] = (kind, rule.default)
    shape = next(s for s in SHAPE_RULES if s.trigger is trigger)
    base: type[Payload] = _AtLeastOne if shape.at_least_one else Payload
    return pydantic.create_model(name, __base__=base, __module__=__name__, __doc__=doc, **fields)


CreateData = _model("CreateData", Trigger.CREATE, "The metadata of a new upload.")
StartData = _model("StartData", Trigger.START, "A processor took the job.")
ProgressData = _model("ProgressData", Trigger.PROGRESS, "How far the current attempt has got.")
CompleteData = _model("CompleteData", Trigger.COMPLETE, "The clips were produced.")
FailData = _model("FailData", Trigger.FAIL, "The processor gave up on this attempt.")
ReasonData = _model("ReasonData", Trigger.CANCEL, "Cancel, retry and delete may say why.")
TimeOutData = _model("TimeOutData", Trigger.TIME_OUT, "The stuck detector reset the job.")
RequeueData = _model("RequeueData", Trigger.REQUEUE, "The worker asks for another attempt after retry_after seconds.")
ReleaseData = _model("ReleaseData", Trigger.RELEASE, "The worker gives the job back unfinished (it shuts down).")
MetadataData = _model("MetadataData", Trigger.UPDATE_METADATA, "A change to the job's metadata; at least one field.")
RescheduleData = _model("RescheduleData", Trigger.RESCHEDULE,
                        "A queued job's new priority or run_at (a run_at already past: claimable at once).")
VoidData = _model("VoidData", Trigger.VOID, "An admin voids an earlier event of the job (by position), with a reason.")


def _create_fields() -> Any:
    """A TypedDict whose keys come from the rule table at import time: no type checker can see such a
    type (they read only literal dicts), so it is typed Any, and so is the functional form that makes it."""
    annotations: dict[str, Any] = {}
    for rule in rules_of(Trigger.CREATE):
        kind = field_type(rule) | None if rule.nullable else field_type(rule)
        annotations[rule.key] = kind if rule.required else NotRequired[kind]
    typed_dict: Any = TypedDict
    fields = typed_dict("CreateFields", annotations)
    fields.__pydantic_config__ = ConfigDict(extra="forbid", strict=False, str_strip_whitespace=False,
                                            use_enum_values=True)
    fields.__doc__ = ("CreateData's fields as a plain dict: bulk creates validate straight into the stored form "
                      "(the same rows of the rule table, so the two accept, refuse and store alike).")
    return fields


CreateFields = _create_fields()


PAYLOADS: dict[Trigger, type[Payload]] = {
    Trigger.CREATE: CreateData,
    Trigger.START: StartData,
    Trigger.PROGRESS: ProgressData,
    Trigger.COMPLETE: CompleteData,
    Trigger.FAIL: FailData,
    Trigger.CANCEL: ReasonData,
    Trigger.RETRY: ReasonData,
    Trigger.TIME_OUT: TimeOutData,
    Trigger.REQUEUE: RequeueData,
    Trigger.RELEASE: ReleaseData,
    Trigger.UPDATE_METADATA: MetadataData,
    Trigger.RESCHEDULE: RescheduleData,
    Trigger.DELETE: ReasonData,
    Trigger.VOID: VoidData,
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


def _list_adapter(item: Any) -> pydantic.TypeAdapter[list[dict[str, Any]]]:
    """A validator of a list of `item`, a type made at run time (CreateFields): `list[item]` would be
    read by a type checker as a type, which a run-time value is not."""
    items: Any = types.GenericAlias(list, (item,))
    return pydantic.TypeAdapter(items)


_CREATE_BATCH = _list_adapter(CreateFields)


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
        for key in _CREATE_NULLABLE:  # JSON null means "not given": not stored (as validate_payload stores it)
            if key in payload and payload[key] is None:
                del payload[key]
        for key, default in _CREATE_DEFAULTS:
            payload.setdefault(key, default)
    return payloads


# What a create stores for the keys it leaves out that have a default (max_attempts, priority).
_CREATE_DEFAULTS = tuple((r.key, r.default) for r in rules_of(Trigger.CREATE) if r.default is not None)
# The keys a create may give as null (run_at).
_CREATE_NULLABLE = tuple(r.key for r in rules_of(Trigger.CREATE) if r.nullable)


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
