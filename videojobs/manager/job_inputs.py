"""The manager's argument rules for single jobs: update_job_status as a trigger, attempts, list pages."""

from __future__ import annotations

from typing import Any

import pydantic

from statemachine import ALLOWED_TRIGGERS, InvalidTransition, State, ValidationError, to_validation_error
from statemachine.validation import check_metadata_fields
from store.jobs import JobQuery

from ..models import JobFilters, decode_cursor

MAX_LIMIT = 500
MAX_OFFSET = 100_000

# update_job_status(status) -> the trigger that reaches that status.
STATUS_TRIGGERS = {
    State.PROCESSING: "start",
    State.COMPLETED: "complete",
    State.FAILED: "fail",
    State.CANCELLED: "cancel",
    State.QUEUED: "retry",
}


def status_transition(status: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """update_job_status(status, **fields) as (trigger, payload, ids): the Jobs methods, by status."""
    trigger, fields = _trigger_for(status), dict(fields)
    if trigger == "start":
        worker_id = fields.pop("worker_id", None)
        data, ids = {"worker_id": worker_id}, {"actor": worker_id or None}
    elif trigger == "complete":
        data = {"output_paths": fields.pop("output_paths", []), "processing_time": fields.pop("processing_time", None)}
        ids = {"attempt": attempt_of(fields.pop("attempt", None))}
    elif trigger == "fail":
        error = fields.pop("error", None) or fields.pop("error_message", None)
        data, ids = {"error": error or ""}, {"attempt": attempt_of(fields.pop("attempt", None))}
    else:
        data, ids = {"reason": fields.pop("reason", None)}, {}
    _refuse_leftovers(fields)
    return trigger, data, ids


def _trigger_for(status: str) -> str:
    try:
        return STATUS_TRIGGERS[State(status)]
    except (ValueError, KeyError):
        allowed = ", ".join(s.value for s in STATUS_TRIGGERS)
        if status in {s.value for s in State}:
            raise InvalidTransition(f"update_job_status({status})", status,
                                    allowed=ALLOWED_TRIGGERS[State(status)],
                                    reason=f"status can be set to {allowed}") from None
        raise ValidationError(f"status must be one of {allowed}", field="status") from None


def _refuse_leftovers(fields: dict[str, Any]) -> None:
    """Leftover keyword arguments are refused by name."""
    if fields:
        name = sorted(fields)[0]
        raise ValidationError(f"unexpected field {name!r} for this status", field=name)


def metadata_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """update_job_metadata's fields, an unknown one refused by name."""
    check_metadata_fields(fields)
    return fields


def attempt_of(value: Any, *, required: bool = False) -> int | None:
    """The attempt a report names: the positive integer start_processing returned (None if optional)."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("attempt must be the positive integer returned by start_processing", field="attempt")
    return value


MAX_KEY_WAIT = 60.0


def key_wait_of(value: Any) -> float | None:
    """How long a create waits for another request with its idempotency key: None (as long as it takes), or
    seconds in (0, 60]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_KEY_WAIT:
        raise ValidationError(f"key_wait must be a number of seconds in (0, {MAX_KEY_WAIT:g}]", field="key_wait")
    return float(value)


def page_query(scope: JobQuery, limit: Any, offset: Any, filters: Any, cursor: str | None) -> JobQuery:
    """A page of `scope` (a user, a team, or all the caller may see) with the filters, checked."""
    limit, offset, checked = _limit(limit), _offset(offset), _filters(filters)
    return JobQuery(
        user_id=scope.user_id, team_id=scope.team_id,
        statuses=tuple(s.value for s in checked.status) if checked.status else None,
        platform_target=checked.platform_target.value if checked.platform_target else None,
        quality_preset=checked.quality_preset.value if checked.quality_preset else None,
        enhancement_level=checked.enhancement_level.value if checked.enhancement_level else None,
        created_from=checked.created_from(), created_before=checked.created_before(), scheduled=checked.scheduled,
        after=decode_cursor(cursor) if cursor is not None else None, limit=limit,
        offset=0 if cursor is not None else offset)


def failed_only(filters: JobFilters | dict[str, Any] | None) -> JobFilters | None:
    """The filters, checked, narrowed to failed jobs; None when they exclude `failed` (nothing to retry)."""
    checked = _filters(filters)
    if checked.status is not None and State.FAILED not in checked.status:
        return None
    return checked.model_copy(update={"status": [State.FAILED]})


def _filters(filters: JobFilters | dict[str, Any] | None) -> JobFilters:
    if filters is None or isinstance(filters, JobFilters):
        return filters or JobFilters()
    if not isinstance(filters, dict):
        raise ValidationError("filters must be a mapping", field="filters")
    try:
        return JobFilters.model_validate(filters)
    except pydantic.ValidationError as exc:
        raise to_validation_error(exc) from exc


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return limit


def _offset(offset: Any) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationError(f"offset must be an integer from 0 to {MAX_OFFSET}", field="offset")
    return offset
