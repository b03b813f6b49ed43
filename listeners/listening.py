"""A dedicated LISTEN connection that survives disconnects.

asyncpg drops a connection's listeners when the connection is lost, and a pooled
connection runs `UNLISTEN *` on release, so every listener here owns its own
connection. `ensure()` reconnects with bounded exponential backoff (tenacity)
and LISTENs *before* returning, so a caller that then catches up from the tables
cannot miss a change: anything committed after the catch-up read rings the bell.
Notifications are broadcast: `arm()` hands out the current waiting token, a
notification (or a lost connection) releases every holder at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import asyncpg
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from statemachine import DatabaseUnavailable
from store import TRANSIENT_ERRORS
from store.application_name import application_name, current
from store.role_connection import connect_with_role

log = structlog.get_logger("vjm.listeners")

# Errors that mean "this connection is gone", for loops that reconnect.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    *TRANSIENT_ERRORS, DatabaseUnavailable, asyncpg.PostgresConnectionError, ConnectionError)
# ...and, for a bounded wait on such a connection, running out of time.
WAIT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)


class ListeningConnection:
    """One connection LISTENing on `channels`, reopened on demand."""

    def __init__(self, database_url: str, channels: Sequence[str], *,
                 on_notify: Callable[[str, str], None] | None = None, role: str | None = None,
                 max_backoff: float = 5.0, give_up_after: float = 3600.0, name: str | None = None):
        """`name`: the session's application_name (store.application_name), else the one current now,
        kept for every reconnection (they happen in a background task)."""
        self._url = database_url
        self._name = name or current()
        self._role = role
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._max_backoff = max_backoff
        self._give_up_after = give_up_after
        self._conn: asyncpg.Connection | None = None
        self._bell = asyncio.Event()
        self.reconnects = 0

    @property
    def connection(self) -> asyncpg.Connection | None:
        """The current connection, if open."""
        return self._conn if self._conn is not None and not self._conn.is_closed() else None

    async def ensure(self) -> asyncpg.Connection:
        """The open connection, reconnecting (LISTEN first) with backoff if it was lost."""
        if (conn := self.connection) is not None:
            return conn
        await self._drop()
        async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(CONNECTION_ERRORS), reraise=True,
                wait=wait_exponential_jitter(multiplier=0.05, max=self._max_backoff, jitter=0.05),
                stop=stop_after_delay(self._give_up_after), before_sleep=_log_reconnect):
            with attempt:
                self._conn = await self._open()
        if self._conn is None:  # AsyncRetrying either opened one or raised
            raise ConnectionError("no listening connection")
        return self._conn

    async def _open(self) -> asyncpg.Connection:
        with application_name(self._name):
            conn = await connect_with_role(self._url, self._role, attempts=1)
        try:
            for channel in self._channels:
                await conn.add_listener(channel, self._notified)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._terminated)
        if self.reconnects or self._conn is not None:
            log.info("listener_reconnected", channels=list(self._channels))
        self.reconnects += 1
        return conn

    def arm(self) -> asyncio.Event:
        """A token released by the next notification or disconnect."""
        return self._bell

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait that returns False
        """Wait until `token` is released or `timeout` passes; True if woken."""
        try:
            async with asyncio.timeout(timeout):
                await token.wait()
            return True
        except TimeoutError:
            return False

    def ring(self) -> None:
        """Release every waiter now."""
        bell, self._bell = self._bell, asyncio.Event()
        bell.set()

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if self._on_notify is not None:
            try:
                self._on_notify(channel, str(payload))
            except Exception:  # noqa: BLE001 - a failing handler never stops the loop
                log.exception("listener_handler_failed", channel=channel)
        self.ring()

    def _terminated(self, conn) -> None:
        log.warning("listener_connection_lost", channels=list(self._channels))
        self.ring()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._terminated)
            if not conn.is_closed():
                conn.terminate()

    async def close(self) -> None:
        """Close the connection (releases session locks and LISTENs)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._terminated)
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5)
            except WAIT_ERRORS:
                conn.terminate()


def _log_reconnect(state) -> None:
    log.warning("listener_reconnect_retry", attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None)
