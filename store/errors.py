"""Driver errors become vjm errors here, and only here (always `raise ... from exc`)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentError  # client-side: a bad query argument

from statemachine import (
    ALLOWED_TRIGGERS,
    AccessDenied,
    ConcurrencyConflict,
    DatabaseUnavailable,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    InvalidTransition,
    JobNotFound,
    StaleAttempt,
    State,
    ValidationError,
    VJMError,
)

# SQLSTATEs raised by sql/ (the guard trigger and the append-only trigger).
SQLSTATE_APPEND_ONLY = "VJ400"
SQLSTATE_NOT_FOUND = "VJ404"
SQLSTATE_CONFLICT = "VJ409"
SQLSTATE_INVALID_TRANSITION = "VJ422"
SQLSTATE_STALE_ATTEMPT = "VJ423"
SQLSTATE_INVALID_TOKEN = "VJ401"  # vjm.token_subject: the end user's token does not verify
SQLSTATE_IDEMPOTENCY_CONFLICT = "VJ424"  # an idempotency key reused for a different request (062_idempotency.sql)
SQLSTATE_IDEMPOTENCY_KEY_IN_USE = "VJ425"  # another transaction holds the key, past the caller's lock_timeout


class InvalidToken(AccessDenied):
    """The end user's token was refused by the database (bad signature, expired, wrong audience, ...)."""

# SQLSTATE classes meaning "the server is not there for us right now": connection
# exceptions (08), operator intervention (57P: shutdown, starting up), and insufficient
# resources (53: too many connections, out of memory, disk full). The one list: the HTTP
# API answers 503 for exactly these (videojobs.errors.is_unavailable).
UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P", "53")

# Errors after which the same request may be sent again on a new connection.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    # "cannot switch to state N; another operation is in progress": a pooled connection
    # whose server just shut down or killed the session (MagicStack/asyncpg#1069).
    asyncpg.InternalClientError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def _allowed(state: str) -> frozenset[str]:
    try:
        return ALLOWED_TRIGGERS[State(state)]
    except ValueError:
        return frozenset()


def translate_error(exc: BaseException, *, job_id: object = None, trigger: str | None = None,
                    attempt: int | None = None) -> BaseException:
    """Map a driver error to the vjm hierarchy; unknown errors are returned unchanged."""
    if isinstance(exc, VJMError):
        return exc
    if isinstance(exc, ArgumentError):  # an InterfaceError subclass, but nothing was sent: not transient
        return ValidationError(f"invalid argument: {str(exc)[:200]}", field=None)
    if isinstance(exc, TRANSIENT_ERRORS):
        return DatabaseUnavailable(f"database unavailable: {exc}")
    if not isinstance(exc, asyncpg.PostgresError):
        return exc
    return (_unavailable(exc) or _refused_transition(exc, job_id, trigger, attempt) or _idempotency(exc)
            or _conflict_or_rights(exc, job_id) or _bad_data(exc) or exc)


def _sqlstate(exc: asyncpg.PostgresError) -> str:
    return getattr(exc, "sqlstate", None) or ""


def _unavailable(exc: asyncpg.PostgresError) -> DatabaseUnavailable | None:
    """The server cannot serve now, or the URL names no database or login it knows."""
    sqlstate = _sqlstate(exc)
    if sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES) or (sqlstate == "55000" and "connections" in str(exc)):
        return DatabaseUnavailable(f"database unavailable: {exc}")
    if isinstance(exc, (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError,
                        asyncpg.InvalidPasswordError)):  # nothing to retry
        return DatabaseUnavailable(f"cannot log in: {exc}")
    if isinstance(exc, (asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError)):
        return DatabaseUnavailable(str(exc))
    if isinstance(exc, (asyncpg.InvalidSQLStatementNameError, asyncpg.DuplicatePreparedStatementError)):
        return DatabaseUnavailable(f"{exc.args[0] if exc.args else exc}: the database URL is a transaction "
                                   "pooler (PgBouncer, Supavisor 6543); set VJM_DATABASE_POOLER=transaction and "
                                   "VJM_DIRECT_DATABASE_URL (README, \"Deploying at scale\")")
    return None


def _refused_transition(exc: asyncpg.PostgresError, job_id: object, trigger: str | None,
                        attempt: int | None) -> VJMError | None:
    """The guard's own refusals: a bad token, an unknown job, an illegal or stale transition."""
    sqlstate, state = _sqlstate(exc), getattr(exc, "detail", None) or ""
    if sqlstate == SQLSTATE_INVALID_TOKEN:
        return InvalidToken(getattr(exc, "message", None) or str(exc))
    if sqlstate == SQLSTATE_NOT_FOUND:
        return JobNotFound(job_id)
    if sqlstate == SQLSTATE_INVALID_TRANSITION:
        return InvalidTransition(trigger or "?", state, job_id=job_id, allowed=_allowed(state),
                                 reason="no attempts left" if trigger == "start" and state == "queued" else None)
    if sqlstate == SQLSTATE_STALE_ATTEMPT:
        hint = getattr(exc, "hint", None)
        return StaleAttempt(trigger or "?", state, job_id=job_id, held=attempt, current=int(hint) if hint else None,
                            allowed=_allowed(state))
    return None


def _idempotency(exc: asyncpg.PostgresError) -> VJMError | None:
    """An idempotency key reused for another request, or held by a request still in progress."""
    sqlstate, message = _sqlstate(exc), getattr(exc, "message", None) or str(exc)
    if sqlstate == SQLSTATE_IDEMPOTENCY_CONFLICT:
        return IdempotencyConflict(message, job_id=_uuid_or_none(getattr(exc, "detail", None)))
    if sqlstate == SQLSTATE_IDEMPOTENCY_KEY_IN_USE:
        return IdempotencyKeyInUse(message)
    return None


def _uuid_or_none(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None


def _conflict_or_rights(exc: asyncpg.PostgresError, job_id: object) -> VJMError | None:
    """A concurrent change, or a role without the right."""
    sqlstate = _sqlstate(exc)
    if sqlstate == SQLSTATE_CONFLICT or isinstance(exc, asyncpg.UniqueViolationError):
        return ConcurrencyConflict(job_id, message=f"job {job_id} was changed concurrently: {exc}")
    if isinstance(exc, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError)):
        return ConcurrencyConflict(job_id, message=f"job {job_id}: {exc}")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError) and str(exc).startswith("permission denied for"):
        # A table or function this role has no grant on: say whose rights decide it.
        return AccessDenied(f"{exc}: the role this connection acts as may not read or run it "
                            f"(an admin's login, or an end user's with --as / as_user, may; SECURITY.md, Roles)")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError) or sqlstate == SQLSTATE_APPEND_ONLY:
        return AccessDenied(str(exc))
    return None


def _bad_data(exc: asyncpg.PostgresError) -> ValidationError | None:
    if isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)):
        return ValidationError(f"refused by the database: {exc}", field=getattr(exc, "column_name", None))
    return None
