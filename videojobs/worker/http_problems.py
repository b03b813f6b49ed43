"""The API's problem documents (RFC 9457, videojobs/http/problems.py) back into the vjm errors they came
from, so that the runtime handles an HTTP refusal exactly as it handles the manager's."""

from __future__ import annotations

from typing import Any

import httpx

from statemachine import (
    AccessDenied,
    ConcurrencyConflict,
    DatabaseUnavailable,
    InvalidTransition,
    JobNotFound,
    StaleAttempt,
    ValidationError,
    VJMError,
)


class ApiUnavailable(DatabaseUnavailable):
    """The API could not be reached, or answered that it (or its database) is unavailable: retry later."""


def raise_for_problem(response: httpx.Response, job_id: Any = None) -> None:
    """Nothing for a success; else the vjm error the answer's problem document names."""
    if response.is_success:
        return
    problem = _problem(response)
    slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)[:1000]
    raise _error(response.status_code, slug, detail, problem, job_id)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:300]}
    return body if isinstance(body, dict) else {}


def _error(status: int, slug: str, detail: str, problem: dict[str, Any], job_id: Any) -> Exception:
    if slug in ("stale-attempt", "invalid-transition"):
        return _transition(slug, detail, problem, job_id)
    if slug == "job-not-found":
        return _with_message(JobNotFound(job_id), detail)
    if slug == "concurrency-conflict":
        return ConcurrencyConflict(job_id, message=detail)
    if status == 422:
        errors = problem.get("errors") or []
        field = errors[0].get("field") if errors and isinstance(errors[0], dict) else None
        return ValidationError(detail, field=field, errors=errors if isinstance(errors, list) else [])
    if status in (401, 403):
        return AccessDenied(f"the vjm API refused the worker's token ({status}): {detail}")
    if status == 429 or status >= 500:
        return ApiUnavailable(f"the vjm API answered {status}: {detail}")
    return VJMError(f"the vjm API answered {status}: {detail}")


def _transition(slug: str, detail: str, problem: dict[str, Any], job_id: Any) -> InvalidTransition:
    trigger, state = str(problem.get("trigger") or "?"), str(problem.get("current_state") or "?")
    allowed = frozenset(str(t) for t in problem.get("allowed_triggers") or ())
    kind = StaleAttempt if slug == "stale-attempt" else InvalidTransition
    return _with_message(kind(trigger, state, job_id=job_id, allowed=allowed), detail)


def _with_message(exc: Exception, detail: str) -> Any:
    """The error with the server's own wording (it knows the attempts and states; the client does not)."""
    exc.args = (detail,)
    return exc
