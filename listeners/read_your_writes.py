"""Read-your-writes: wait, with a bound, until the projection has reached a write.

Every append returns an Event whose `cursor` is (xact_id, position). The
projection has applied that event once the projector's checkpoint is at or
after the cursor in commit order (the checkpoint only ever passes finished
transactions). A `ProjectionWatcher` holds one LISTEN connection on vjm_jobs:
every projector notice carries the new checkpoint cursor, so waiters wake and
decide without a query; the checkpoint is read from the table on start and, as a
fallback for lost notifications, every `poll_interval`.
"""

from __future__ import annotations

import asyncio
import time

from store.projections import get_checkpoint

from .listening import WAIT_ERRORS, ListeningConnection
from .notifications import CHANNEL, parse_notice

Cursor = tuple[int, int]


class ProjectionWatcher:
    """Shared by any number of concurrent waiters; one connection."""

    def __init__(self, database_url: str, *, name: str = "main", poll_interval: float = 1.0,
                 role: str | None = None):
        self._name = name
        self._poll_interval = poll_interval
        # Reading vjm.projection_checkpoints takes a service role under RLS (e.g. vjm_processor).
        self._listening = ListeningConnection(database_url, (CHANNEL,), on_notify=self._notified, role=role)
        self._query_lock = asyncio.Lock()
        self.reached: Cursor = (0, 0)

    def _notified(self, channel: str, payload: str) -> None:
        notice = parse_notice(payload)
        if notice is not None and (reached := (notice.cursor[0], notice.cursor[1])) > self.reached:
            self.reached = reached

    async def refresh(self) -> Cursor:
        """Read the checkpoint from the table."""
        async with self._query_lock:
            conn = await self._listening.ensure()
            checkpoint = await get_checkpoint(conn, self._name)
        if checkpoint is not None and checkpoint.cursor > self.reached:
            self.reached = checkpoint.cursor
        return self.reached

    async def wait_for(self, cursor: Cursor, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait that returns False
        """True once the projection has applied `cursor`; False if `timeout` seconds pass first.

        The bound holds whatever the database does: a refresh that cannot reconnect in
        time counts as "not reached" (the caller's next query reports the outage).
        """
        target = (int(cursor[0]), int(cursor[1]))
        try:
            async with asyncio.timeout(timeout):
                return await self._wait(target, time.monotonic() + timeout)
        except WAIT_ERRORS:
            return self.reached >= target

    async def _wait(self, target: Cursor, deadline: float) -> bool:
        token = self._listening.arm()
        if self.reached >= target or await self.refresh() >= target:
            return True
        while (remaining := deadline - time.monotonic()) > 0:
            woken = await self._listening.wait(token, min(remaining, self._poll_interval))
            token = self._listening.arm()
            if self.reached >= target or (not woken and await self.refresh() >= target):
                return True
        return False

    async def close(self) -> None:
        """Close the LISTEN connection."""
        await self._listening.close()

    async def __aenter__(self) -> ProjectionWatcher:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def wait_for_projection(database_url: str, cursor: Cursor, timeout: float, *, name: str = "main",  # noqa: ASYNC109 - a bounded wait that returns False
                              role: str | None = None) -> bool:
    """One-off wait (opens and closes a connection); long-lived callers share a ProjectionWatcher."""
    async with ProjectionWatcher(database_url, name=name, role=role) as watcher:
        return await watcher.wait_for(cursor, timeout)
