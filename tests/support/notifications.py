"""Counting NOTIFY deliveries on a dedicated LISTEN connection."""

from __future__ import annotations

import asyncpg


class NotificationCounter:
    """A dedicated connection LISTENing on channels, counting what arrives (and keeping payloads).

    Listening on vjm_events, it holds the doorbell (sql/schema/050_locks_and_doorbell.sql), so that every append rings.
    """

    def __init__(self, url: str, channels: tuple[str, ...] = ("vjm_jobs",)):
        self._url = url
        self._channels = channels
        self.payloads: dict[str, list[str]] = {c: [] for c in channels}
        self._conn: asyncpg.Connection | None = None

    def _on(self, conn, pid, channel: str, payload: str) -> None:
        self.payloads[channel].append(payload)

    def count(self, channel: str = "vjm_jobs") -> int:
        return len(self.payloads[channel])

    async def __aenter__(self) -> NotificationCounter:
        self._conn = await asyncpg.connect(self._url)
        for channel in self._channels:
            await self._conn.add_listener(channel, self._on)
        if "vjm_events" in self._channels:
            await self._conn.execute("SELECT vjm.hold_doorbell()")
        return self

    async def __aexit__(self, *exc) -> None:
        if self._conn is not None:
            await self._conn.close()
