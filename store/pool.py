"""asyncpg pools and connections with bounded, logged retries of transient failures.

Only *connecting* is retried here, which is always safe. A statement that was
sent and lost its connection is never re-sent blindly: its outcome is unknown,
so callers get DatabaseUnavailable (reads may opt in to `retry_idempotent`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from statemachine import DatabaseUnavailable, VJMError

from .application_name import named_kwargs
from .errors import TRANSIENT_ERRORS, translate_error

log = structlog.get_logger("vjm.pool")
T = TypeVar("T")


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs: json and jsonb as Python objects."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=json.dumps, decoder=json.loads)


def _log_retry(state: RetryCallState) -> None:
    log.warning("db_retry", attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None)


def _transient(exc: BaseException) -> bool:
    """A driver or network error worth another try; never a vjm verdict (AccessDenied is an OSError too)."""
    return isinstance(exc, TRANSIENT_ERRORS) and not isinstance(exc, VJMError)


def _retrying(attempts: int, max_delay: float) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_delay),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.1),
        before_sleep=_log_retry,
        reraise=False,
    )


async def retry_idempotent(operation: Callable[[], Awaitable[T]], *, attempts: int = 5,
                           max_delay: float = 15.0) -> T:
    """Run an idempotent operation, retrying transient errors; DatabaseUnavailable at the end."""
    try:
        async for attempt in _retrying(attempts, max_delay):
            with attempt:
                return await operation()
    except RetryError as exc:
        raise DatabaseUnavailable(f"database unavailable after {attempts} attempts: "
                                  f"{exc.last_attempt.exception()}") from exc
    except asyncpg.PostgresError as exc:  # refused for good (no such database or login, ...): a vjm error
        translated = translate_error(exc)
        if translated is exc:
            raise
        raise translated from exc
    raise AssertionError("unreachable")


async def connect(url: str, *, attempts: int = 5, max_delay: float = 15.0, **kwargs: Any) -> asyncpg.Connection:
    """One dedicated connection (listeners need their own), with connect retries; named for
    pg_stat_activity by store.application_name unless `url` or `server_settings` name it."""
    kwargs = named_kwargs(url, kwargs)

    async def _open() -> asyncpg.Connection:
        conn = await asyncpg.connect(url, **kwargs)
        await init_connection(conn)
        return conn
    return await retry_idempotent(_open, attempts=attempts, max_delay=max_delay)


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing beyond asyncpg's own rollback of an open transaction.

    asyncpg's default reset sends `RESET ALL; UNLISTEN *; ...` on every release: a
    second round trip for every one-statement append. vjm never sets session state
    on pooled connections (identity and role are set with `is_local => true`, so they
    end with the transaction, and listeners use dedicated connections), so that
    round trip buys nothing.
    """


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10, attempts: int = 5,
                      max_delay: float = 15.0, **kwargs: Any) -> asyncpg.Pool:
    """An asyncpg pool with codecs installed, created with connect retries (named as `connect` names)."""
    kwargs = named_kwargs(url, kwargs)

    async def _open() -> asyncpg.Pool:
        kwargs.setdefault("reset", keep_session)
        return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                         init=init_connection, **kwargs)
    return await retry_idempotent(_open, attempts=attempts, max_delay=max_delay)
