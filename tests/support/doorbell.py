"""A listener that holds the doorbell (sql/schema/050_locks_and_doorbell.sql), so that every append rings.

Appends ring `vjm_events` only while some session holds the doorbell lock; a test that
counts doorbells holds it for as long as it listens, as a raw-SQL listener would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import asyncpg


class Doorbells:
    """The `vjm_events` payloads one listening session received, in order."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn
        self.received: asyncio.Queue[str] = asyncio.Queue()
        self.pid = conn.get_server_pid()

    async def next(self, within: float = 10) -> dict:
        """The next payload, decoded; TimeoutError if none arrives in time."""
        return json.loads(await asyncio.wait_for(self.received.get(), within))

    async def settle(self) -> None:
        """After this round trip, notifications committed before it have arrived."""
        await self.conn.execute("SELECT 1")

    def empty(self) -> bool:
        return self.received.empty()


@contextlib.asynccontextmanager
async def listening(database_url: str, *, hold: bool) -> AsyncIterator[Doorbells]:
    """A session LISTENing on vjm_events; with `hold`, it holds the doorbell so every append rings."""
    conn = await asyncpg.connect(database_url)
    bells = Doorbells(conn)
    try:
        await conn.add_listener("vjm_events", lambda *args: bells.received.put_nowait(args[3]))
        if hold:
            await conn.execute("SELECT vjm.hold_doorbell()")
        yield bells
    finally:
        await conn.close()


def ringing_doorbell(database_url: str) -> contextlib.AbstractAsyncContextManager[Doorbells]:
    """A listener for whom every append rings (it holds the doorbell)."""
    return listening(database_url, hold=True)
