"""Wake-ups for the long-polled worker calls, from the app's change-feed hub (no connection of their own).

One reader per app subscribes to the hub (the SSE streams' shared reader) and, for each batch of
changes, wakes:
- as many waiting claims as jobs became `queued` (the longest waiting first), so that one new job
  wakes one worker, not the whole fleet;
- every heartbeat that watches a job which left `processing` (cancelled, deleted, timed out, done).

A wake-up is only a prompt: the claim or the renewal that follows decides. So every waiter also
checks again on its own every `recheck` seconds: a job whose requeue delay ran out (no change says
so), a change the feed has not delivered, a job of a platform the woken worker does not take. A
missed wake-up costs that much latency, never a job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol
from uuid import UUID

import structlog

from videojobs.manager.subscriptions import ChangeFeedHub

log = structlog.get_logger("vjm.http")


class Change(Protocol):
    """What a wake-up reads of a change-feed entry."""

    @property
    def job_id(self) -> UUID: ...

    @property
    def status(self) -> str: ...


class WorkerWaits:
    """Tickets for waiting claims and watched jobs; `start(open_hub)` begins reading, `close()` frees everyone."""

    def __init__(self) -> None:
        self._claims: deque[asyncio.Event] = deque()
        self._watches: dict[UUID, set[asyncio.Event]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = False

    def start(self, open_hub: Callable[[], Awaitable[ChangeFeedHub]]) -> None:
        """Read the change feed in the background (once; again after the reader ended)."""
        if not self.closed and (self._reader is None or self._reader.done()):
            self._reader = asyncio.create_task(self._read(open_hub), name="vjm-worker-waits")

    def claim_ticket(self) -> asyncio.Event:
        """A place in the queue of waiting claims; take it before claiming, so a job queued meanwhile wakes it."""
        ticket = asyncio.Event()
        if self.closed:
            ticket.set()
        else:
            self._claims.append(ticket)
        return ticket

    def drop_claim(self, ticket: asyncio.Event) -> None:
        with contextlib.suppress(ValueError):
            self._claims.remove(ticket)

    def watch(self, job_ids: Iterable[UUID]) -> asyncio.Event:
        """A ticket set when one of these jobs leaves `processing`; take it before renewing."""
        ticket = asyncio.Event()
        if self.closed:
            ticket.set()
        for job_id in job_ids:
            self._watches.setdefault(job_id, set()).add(ticket)
        return ticket

    def unwatch(self, job_ids: Iterable[UUID], ticket: asyncio.Event) -> None:
        for job_id in job_ids:
            watchers = self._watches.get(job_id)
            if watchers is not None:
                watchers.discard(ticket)
                if not watchers:
                    del self._watches[job_id]

    @property
    def waiting(self) -> tuple[int, int]:
        """(claims waiting, jobs watched): for tests and metrics."""
        return len(self._claims), len(self._watches)

    def dispatch(self, changes: Sequence[Change]) -> None:
        """Wake one waiting claim per job queued, and the watchers of every job that left processing."""
        queued = sum(1 for change in changes if change.status == "queued")
        for _ in range(min(queued, len(self._claims))):
            self._claims.popleft().set()
        for change in changes:
            if change.status != "processing":
                for ticket in self._watches.get(change.job_id, ()):
                    ticket.set()

    async def close(self) -> None:
        """Answer every waiter now (the app stops: a held request must not hold the shutdown), stop reading."""
        self.closed = True
        for ticket in self._claims:
            ticket.set()
        for tickets in self._watches.values():
            for ticket in tickets:
                ticket.set()
        self._claims.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self, open_hub: Callable[[], Awaitable[ChangeFeedHub]]) -> None:
        """Follow the hub from its position now; after an overflow, from its position then (a gap only
        delays a wake-up: the waiters check again on their own)."""
        try:
            hub = await open_hub()
            await hub.wait_ready()
            while not hub.closed and not self.closed:
                async with hub.subscribe(after=hub.position or 0) as subscription:
                    async for batch in subscription.batches():
                        self.dispatch(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the waiters recheck on their own; the next call restarts it
            log.warning("worker_waits_reader_failed", error=repr(exc)[:300])
