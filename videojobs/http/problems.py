"""RFC 9457 problem details: the one place where exceptions become HTTP answers.

Every error the API sends is `application/problem+json`, built by `problem_for`
from the vjm error hierarchy, FastAPI's own request validation, Starlette's
routing errors (404/405), authentication failures and database outages. Only an
exception nobody anticipated becomes a 500, and it is logged with its traceback.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from videojobs.errors import (
    AccessDenied,
    ConcurrencyConflict,
    DatabaseUnavailable,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    InvalidTransition,
    JobNotFound,
    StaleAttempt,
    TeamNotFound,
    ValidationError,
    is_unavailable,
)

from .auth import AuthenticationFailed, Forbidden

log = structlog.get_logger("vjm.http")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://vjm.dev/problems/"
RETRY_AFTER_SECONDS = 5


class FieldError(BaseModel):
    """One refused input: which field, and why."""

    field: str = Field(description="Dotted path of the field, e.g. `clip_count` or `query.limit`")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://vjm.dev/problems/job-not-found", "title": "Job not found", "status": 404,
        "detail": "job 9b2f6c1e-3f7a-4d1e-9a57-0c4f2b1d8e11 not found",
        "instance": "/api/v1/jobs/9b2f6c1e-3f7a-4d1e-9a57-0c4f2b1d8e11"}]})

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = None


class ValidationProblem(Problem):
    """422: which fields were refused."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://vjm.dev/problems/validation-error", "title": "Invalid request", "status": 422,
        "detail": "clip_count: Input should be less than or equal to 50",
        "errors": [{"field": "clip_count", "message": "Input should be less than or equal to 50"}]}]})

    errors: list[FieldError] = Field(default_factory=list)


class TransitionProblem(Problem):
    """409: the state machine refused the change; what the job is now and what it allows."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://vjm.dev/problems/invalid-transition", "title": "Invalid transition", "status": 409,
        "detail": "cannot cancel job 9b2f... in state completed; allowed: delete, retry",
        "current_state": "completed", "allowed_triggers": ["delete", "retry"], "trigger": "cancel"}]})

    current_state: str | None = None
    allowed_triggers: list[str] = Field(default_factory=list)
    trigger: str | None = None


class ProblemError(Exception):
    """Raise from a route to answer with a specific problem."""

    def __init__(self, status: int, slug: str, title: str, detail: str | None = None, **extra: Any):
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail, self.extra = status, slug, title, detail, extra


def problem_response(status: int, slug: str, title: str, detail: str | None = None, *, instance: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, "instance": instance,
            **extra}
    return JSONResponse({k: v for k, v in body.items() if v is not None}, status_code=status,
                        headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_for(exc: BaseException, instance: str | None = None) -> JSONResponse:
    """Translate any exception into its problem response (500 only for the unanticipated)."""
    for kinds, build in _TRANSLATIONS:
        if isinstance(exc, kinds):
            return build(exc, instance)
    if is_unavailable(exc):
        return _unavailable(exc, instance)
    log.error("http_unhandled_error", instance=instance, error=repr(exc), exc_info=exc)
    return problem_response(500, "internal-error", "Internal server error",
                            "an unexpected error occurred; it has been logged", instance=instance)


def _auth(exc: AuthenticationFailed, instance: str | None) -> JSONResponse:
    challenge = f'Bearer realm="vjm", error="{exc.error}", error_description="{exc}"'
    return problem_response(401, "unauthorized", "Authentication required", str(exc), instance=instance,
                            headers={"WWW-Authenticate": challenge})


# PostgreSQL's own wording of a refusal ("new row violates row-level security policy for
# table ...", "permission denied for table ..."): it names tables and policies, so a 403 never
# carries it; vjm's own refusals ("not allowed to cancel job ...") are shown as they are.
_DATABASE_WORDING = re.compile(r"row-level security|permission denied|violates|policy", re.IGNORECASE)
FORBIDDEN_DETAIL = "not allowed: this caller may not do that"


def _forbidden(exc: BaseException, instance: str | None) -> JSONResponse:
    detail = _short(exc)
    if isinstance(exc, AccessDenied) and _DATABASE_WORDING.search(str(exc)):
        detail = FORBIDDEN_DETAIL
    return problem_response(403, "forbidden", "Forbidden", detail, instance=instance)


def _not_found(exc: JobNotFound, instance: str | None) -> JSONResponse:
    return problem_response(404, "job-not-found", "Job not found", str(exc), instance=instance)


def _team_not_found(exc: BaseException, instance: str | None) -> JSONResponse:
    return problem_response(404, "team-not-found", "Team not found", str(exc), instance=instance)


def _transition(exc: InvalidTransition, instance: str | None) -> JSONResponse:
    slug, title = ("stale-attempt", "Stale attempt") if isinstance(exc, StaleAttempt) else \
        ("invalid-transition", "Invalid transition")
    return problem_response(409, slug, title, str(exc), instance=instance, current_state=str(exc.state),
                            allowed_triggers=list(exc.allowed), trigger=exc.trigger)


def _conflict(exc: ConcurrencyConflict, instance: str | None) -> JSONResponse:
    return problem_response(409, "concurrency-conflict", "Concurrency conflict", str(exc), instance=instance)


def _key_in_use(exc: IdempotencyKeyInUse, instance: str | None) -> JSONResponse:
    return problem_response(409, "idempotency-key-in-use", "A request with this idempotency key is in progress",
                            str(exc), instance=instance, headers={"Retry-After": "1"})


def _key_reused(exc: IdempotencyConflict, instance: str | None) -> JSONResponse:
    return problem_response(422, "idempotency-key-reused", "Idempotency key reused for a different request",
                            str(exc), instance=instance, errors=[{"field": "idempotency_key", "message": str(exc)}])


def _invalid(exc: ValidationError, instance: str | None) -> JSONResponse:
    errors = [{"field": str(e.get("field") or exc.field or "body"), "message": str(e.get("message") or exc)}
              for e in exc.errors] or [{"field": exc.field or "body", "message": str(exc)}]
    return problem_response(422, "validation-error", "Invalid request", str(exc), instance=instance, errors=errors)


def _request_invalid(exc: RequestValidationError, instance: str | None) -> JSONResponse:
    errors = [{"field": _field(_loc(e)), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, "validation-error", "Invalid request", detail, instance=instance, errors=errors)


def _http(exc: HTTPException, instance: str | None) -> JSONResponse:
    titles = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed"),
              413: ("payload-too-large", "Payload too large")}
    slug, title = titles.get(exc.status_code, ("http-error", "HTTP error"))
    return problem_response(exc.status_code, slug, title, str(exc.detail), instance=instance,
                            headers=getattr(exc, "headers", None))


def _raised(exc: ProblemError, instance: str | None) -> JSONResponse:
    return problem_response(exc.status, exc.slug, exc.title, exc.detail, instance=instance, **exc.extra)


def _unavailable(exc: BaseException, instance: str | None) -> JSONResponse:
    log.warning("http_database_unavailable", instance=instance, error=repr(exc)[:300])
    return problem_response(503, "database-unavailable", "Service unavailable",
                            "the database is unavailable; retry later", instance=instance,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _loc(error: dict[str, Any]) -> tuple:
    """The error's location; a bad discriminator (`action`) is named, not reported as the whole body."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        tag = str((error.get("ctx") or {}).get("discriminator", "")).strip("'\"")
        return loc + (tag,) if tag else loc
    return loc


def _field(loc: tuple | list) -> str:
    """`('body', 'clip_count')` -> `clip_count`; `('query', 'limit')` -> `query.limit`."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


_TRANSLATIONS: list[tuple[Any, Any]] = [
    (ProblemError, _raised),
    (AuthenticationFailed, _auth),
    ((Forbidden, AccessDenied), _forbidden),
    (JobNotFound, _not_found),
    (TeamNotFound, _team_not_found),
    (InvalidTransition, _transition),
    (IdempotencyKeyInUse, _key_in_use),
    (ConcurrencyConflict, _conflict),
    (IdempotencyConflict, _key_reused),
    (ValidationError, _invalid),
    (RequestValidationError, _request_invalid),
    (HTTPException, _http),
    (DatabaseUnavailable, _unavailable),
]
