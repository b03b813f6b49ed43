"""The one error hierarchy of vjm. `store` translates driver errors into these."""

from __future__ import annotations

from typing import Any


class VJMError(Exception):
    """Base class of every error vjm raises on purpose."""


class ValidationError(VJMError, ValueError):
    """Input was refused before anything was written. `field` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.field = field
        self.errors = errors or []


class JobNotFound(VJMError, LookupError):
    """No job with this id exists, or the caller may not see it."""

    def __init__(self, job_id: object):
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class InvalidTransition(VJMError):
    """The state machine does not allow this trigger from the job's current state."""

    def __init__(self, trigger: str, state: str, *, job_id: object = None,
                 allowed: frozenset[str] | None = None, reason: str | None = None):
        self.trigger, self.state, self.job_id = trigger, state, job_id
        self.allowed = sorted(allowed or ())
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"cannot {trigger} job {job_id} in state {state}{detail}; allowed: {', '.join(self.allowed) or 'none'}"
        )


class StaleAttempt(InvalidTransition):
    """Attempt fencing: the caller holds an attempt that is no longer current."""

    def __init__(self, trigger: str, state: str, *, job_id: object = None,
                 held: int | None = None, current: int | None = None,
                 allowed: frozenset[str] | None = None):
        super().__init__(trigger, state, job_id=job_id, allowed=allowed,
                         reason=f"attempt {held} is stale, current attempt is {current}")
        self.held, self.current = held, current


class ConcurrencyConflict(VJMError):
    """Someone else changed the job first (version already taken)."""

    def __init__(self, job_id: object, expected_version: int | None = None, message: str | None = None):
        super().__init__(message or f"job {job_id} was changed concurrently (expected version {expected_version})")
        self.job_id = job_id
        self.expected_version = expected_version


class IdempotencyConflict(VJMError):
    """A create reused an idempotency key of the same owner, within its window, with a different request.

    Nothing was written. `job_id` names the job the key made (the caller's own: keys are per owner).
    """

    def __init__(self, message: str, *, job_id: object = None):
        super().__init__(message)
        self.job_id = job_id


class IdempotencyKeyInUse(ConcurrencyConflict):
    """Another request with this idempotency key is still being processed (it holds the key); send it again later."""

    def __init__(self, message: str):
        super().__init__(None, message=message)


class AccessDenied(VJMError, PermissionError):
    """The caller may see the job but may not perform this action on it."""


class DatabaseUnavailable(VJMError, ConnectionError):
    """PostgreSQL could not be reached after bounded retries."""


class MigrationError(VJMError):
    """The schema cannot be migrated safely (e.g. an applied file has changed)."""
