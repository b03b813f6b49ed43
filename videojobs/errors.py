"""The one error vocabulary of the application: vjm errors, and driver errors translated once.

Adapters (HTTP, CLI) classify failures with `as_vjm_error` (store/errors.py's translator,
the only one): a driver error becomes the vjm error it means, and anything else is left as is.
"""

from __future__ import annotations

from statemachine import (
    AccessDenied,
    ConcurrencyConflict,
    DatabaseUnavailable,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    InvalidTransition,
    JobNotFound,
    MigrationError,
    StaleAttempt,
    ValidationError,
    VJMError,
)
from store.errors import InvalidToken, translate_error
from store.teams import TeamNotFound


def as_vjm_error(exc: BaseException) -> BaseException:
    """The vjm error `exc` means (DatabaseUnavailable for a server that is down, ...), else `exc` itself."""
    return translate_error(exc)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be reached or will not accept us now (HTTP 503)."""
    return isinstance(as_vjm_error(exc), DatabaseUnavailable) or isinstance(exc, TimeoutError)


__all__ = ["AccessDenied", "ConcurrencyConflict", "DatabaseUnavailable", "IdempotencyConflict",
           "IdempotencyKeyInUse", "InvalidToken", "InvalidTransition",
           "JobNotFound", "MigrationError", "StaleAttempt", "TeamNotFound", "ValidationError", "VJMError",
           "as_vjm_error", "is_unavailable"]
