"""One subscriber of a ChangeFeedHub: `async for change in hub.subscribe(after=seq)`.

Joining, and resuming after a seq: a subscriber behind the hub reads the feed itself,
acting as its user (RLS) through a pooled connection, one short query per page. When a
read comes back short it has every row it may see up to `head`, the hub's position
before that read. Registering happens without an await between checking the hub's
position and joining its subscriber set, so no page can be dispatched in between:
- if the hub is still at `head` (or behind the subscriber), it simply joins;
- else it joins first and reads once more: pages the hub dispatches meanwhile land in
  its buffer, and the overlap with the read is dropped by seq.
Either way every visible change arrives once, in seq order, with no gap.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from store.projections import JobChange

if TYPE_CHECKING:
    from .feed_hub import ChangeFeedHub

OVERFLOW, CLOSED, SHUTDOWN = "overflow", "closed", "shutdown"  # why a subscription ended


class FeedSubscription:
    """`async for change in hub.subscribe(after=seq)`: catch-up from the database, then live."""

    def __init__(self, hub: ChangeFeedHub, *, after: int, user_id: str | None):
        self.position = after  # the last seq handed out (or known to hold nothing for this subscriber)
        self.user_id = user_id
        self.ended: str | None = None  # why it ended: overflow, closed, shutdown
        self._hub = hub
        self._buffer: deque[JobChange] = deque()
        self._wake = asyncio.Event()

    @property
    def buffered(self) -> int:
        """Changes waiting in the buffer."""
        return len(self._buffer)

    def __aiter__(self) -> AsyncIterator[JobChange]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[JobChange]:
        async for batch in self.batches():
            for change in batch:
                yield change

    async def batches(self) -> AsyncIterator[list[JobChange]]:
        """The same changes, a list at a time: all that is available at once (a writer sends it in one go)."""
        try:
            async for page in self._catch_up():
                yield page
            while True:
                batch = self._take()
                if batch:
                    yield batch
                elif self.ended is not None:
                    return
                else:
                    self._wake.clear()
                    await self._wake.wait()
        finally:
            if self.ended is None:
                self._hub._end(self, CLOSED)

    def _take(self) -> list[JobChange]:
        """Everything buffered that this subscriber has not had yet (the buffer is emptied)."""
        batch = [change for change in self._buffer if change.seq > self.position]
        self._buffer.clear()
        if batch:
            self.position = batch[-1].seq
        return batch

    async def _catch_up(self) -> AsyncIterator[list[JobChange]]:
        """Read the feed from the database until level with the hub, then join it (module docstring)."""
        hub = self._hub
        await hub.wait_ready()
        joined = False
        while self.ended is None:
            head = hub.position or 0
            page = await hub.read_after(self.user_id, self.position)
            fresh = [change for change in page if change.seq > self.position]
            if fresh:
                self.position = fresh[-1].seq
                yield fresh
            if len(page) >= hub.config.page_size:
                continue
            if joined:
                return
            self.position = max(self.position, head)  # a short read holds every visible row up to head
            joined = True
            if hub._join(self):
                return

    def _offer(self, changes: Iterable[JobChange]) -> bool:
        """Buffer the changes this subscriber has not had; False (nothing buffered) if it is already full.

        A page is taken whole by a buffer below `queue_size`, so one large page never ends a
        subscriber that keeps up; a buffer holds fewer than queue_size + page_size changes.
        """
        if len(self._buffer) >= self._hub.config.queue_size:
            return False
        fresh = [change for change in changes if change.seq > self.position]
        self._buffer.extend(fresh)
        if fresh:
            self._wake.set()
        return True

    def _end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._wake.set()

    async def close(self) -> None:
        """Leave the hub; the iterator ends after what is already buffered."""
        if self.ended is None:
            self._hub._end(self, CLOSED)

    async def __aenter__(self) -> FeedSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
