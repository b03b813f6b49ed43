"""Live subscriptions for dashboards: an async iterator over job changes.

The source of truth is the durable change feed vjm.job_changes, written by the
projector in the same transaction as the projection and numbered by `seq` in
commit order (see vjm.projection_horizon in sql/schema/030_event_log.sql). A subscription LISTENs on vjm_jobs
first, then reads the feed after its last `seq`; notifications only wake it.
So a subscriber that reconnects, or resumes later with `after=<last seq seen>`,
gets every change, in order, once. Event positions are not used as the resume
token because they are handed out before commit and can become visible out of order.

Visibility is the database's (RLS on vjm.job_changes): with `user_id`, every
page is read in a transaction acting as that user (store.identity.acting_as,
role vjm_authenticated by default), so a subscriber sees only its own and its
teams' jobs; without it, the connection's own role decides (services, admins).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog

from store.identity import AUTHENTICATED, acting_as
from store.projections import JobChange, fetch_changes

from .listening import CONNECTION_ERRORS, ListeningConnection
from .notifications import CHANNEL

log = structlog.get_logger("vjm.subscriptions")


class JobChangeSubscription:
    """`async for change in JobChangeSubscription(url, after=seq)`: every change after `after`."""

    def __init__(self, database_url: str, *, after: int = 0, user_id: str | None = None,
                 role: str | None = None, batch_size: int = 500, poll_interval: float = 1.0,
                 max_backoff: float = 5.0):
        self.position = after
        self._user_id = user_id
        self._role = role or (AUTHENTICATED if user_id is not None else None)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._listening = ListeningConnection(database_url, (CHANNEL,), max_backoff=max_backoff)
        self._closed = False

    def __aiter__(self) -> AsyncIterator[JobChange]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[JobChange]:
        # The connection outlives one `async for`: breaking out and iterating again resumes at
        # `position` on the same LISTEN. `close()` (or `async with`) releases it.
        while not self._closed:
            token = self._listening.arm()
            changes = await self._next_page()
            for change in changes or ():
                self.position = change.seq
                yield change
            if changes is None or len(changes) < self._batch_size:
                await self._listening.wait(token, self._poll_interval if changes is not None else 0.05)

    async def _next_page(self) -> list[JobChange] | None:
        try:
            conn = await self._listening.ensure()
            if self._role is None:
                return await fetch_changes(conn, self.position, self._batch_size)
            async with acting_as(conn, role=self._role, user_id=self._user_id) as tx:
                return await fetch_changes(tx, self.position, self._batch_size)
        except CONNECTION_ERRORS as exc:
            log.warning("subscription_connection_lost", position=self.position, error=repr(exc))
            return None

    async def close(self) -> None:
        """Stop iterating and close the connection."""
        self._closed = True
        self._listening.ring()
        await self._listening.close()

    async def __aenter__(self) -> JobChangeSubscription:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def subscribe_job_changes(database_url: str, *, after: int = 0, **options) -> JobChangeSubscription:
    """An async iterator over job changes after change-feed sequence number `after`."""
    return JobChangeSubscription(database_url, after=after, **options)
