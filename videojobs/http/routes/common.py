"""What the routers share: the problem responses each route declares."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..long_poll import Hold
from ..problems import Problem, TransitionProblem, ValidationProblem
from ..state import AppState

_DESCRIPTIONS = {
    401: "Missing, malformed, expired or wrongly signed bearer token (WWW-Authenticate says which)",
    403: "The caller may not do this (role, or an action forbidden on a visible job)",
    404: "No such job, or the caller may not see it",
    409: "Illegal transition (with current_state and allowed_triggers), stale attempt, concurrent change, or "
         "a request with the same idempotency key still in progress",
    413: "Request body over the size limit",
    422: "Invalid input; `errors` names each field (an idempotency key reused for a different request too)",
    503: "The database is unavailable; retry after the Retry-After header",
}
_MODELS: dict[int, Any] = {409: TransitionProblem, 422: ValidationProblem}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these problem status codes (always with 401, 422 and 503)."""
    wanted = sorted(set(codes) | {401, 422, 503})
    return {code: {"model": _MODELS.get(code, Problem), "description": _DESCRIPTIONS[code]} for code in wanted}


def hold_for(state: AppState, request: Request, wait: float) -> Hold:
    """How long a worker's call may be held: its `wait` under the server's cap; it starts the change-feed
    reader that wakes held calls (once per app)."""
    seconds = min(wait, state.options.long_poll_max_seconds)
    if seconds > 0:
        state.worker_waits.start(state.require_feed_hub)
    return Hold(state.worker_waits, seconds, state.options.long_poll_recheck_seconds, request.is_disconnected)
