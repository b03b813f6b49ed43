"""Reads on a streaming standby that still see this process's writes (VJM_READ_DATABASE_URL).

A standby replays the primary's WAL a little later than the primary commits it. A read that
follows a write through the same runtime goes to the standby only once the standby has
replayed past that write, in the measure the read needs:

- the WAL: the standby's `pg_last_wal_replay_lsn()` at or past the primary's WAL position read
  after the write returned (`ReadTarget.wal`; flushed, or inserted when commits are
  asynchronous: store/replica.py). Every read waits for this (the log, teams, the claim policy:
  anything the write changed);
- the read models: the projector's checkpoint, as the standby has replayed it, at or past the
  cursor of the last event written (`ReadTarget.cursor`). The projector writes the checkpoint,
  the rows, the counters and the change feed in one transaction, so a replayed checkpoint
  means replayed rows.

The wait is bounded (the caller's `consistency_timeout`); `wait_for` then says False and the
caller reads on the primary. A standby cannot LISTEN, so the projector's part is waited for on
the primary's ProjectionWatcher (woken by its notice), and only the last step, the standby's
replay, is polled: from 1 ms, doubling to `max_poll`. What the standby is known to have
replayed is kept, so reads behind a write already seen replayed ask nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import structlog

from store.replica import replica_position

from .listening import WAIT_ERRORS
from .read_your_writes import ProjectionWatcher

log = structlog.get_logger("vjm.replica")

Cursor = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ReadTarget:
    """What a read must see: the primary's WAL position after the last write (None: nothing written yet),
    and, for a read of the read models, the cursor of the last event written (None: not needed)."""

    wal: int | None = None
    cursor: Cursor | None = None


class ReplicaReads:
    """A standby's two pools (the trusted service's role; end users, each request under acting_as) and how far
    the standby is known to have replayed."""

    def __init__(self, service_pool: asyncpg.Pool, user_pool: asyncpg.Pool, *, commits_flushed: bool = False,
                 checkpoint: str = "main", max_poll: float = 0.025) -> None:
        self.service_pool, self.user_pool = service_pool, user_pool
        # The primary's writing sessions commit synchronously: its flush position bounds what they wrote (else its
        # insert position; store/replica.py).
        self.commits_flushed = commits_flushed
        self._checkpoint, self._max_poll = checkpoint, max_poll
        self.replayed = 0             # WAL bytes the standby is known to have replayed
        self.reached: Cursor = (0, 0)  # the projector's checkpoint as the standby is known to have replayed it
        self.in_recovery: bool | None = None  # False: the read URL names a primary (e.g. a promoted standby)
        self.routed = 0               # reads served by the standby
        self.fallbacks = 0            # reads that went to the primary (the standby was behind or down)

    def covers(self, target: ReadTarget) -> bool:
        """Whether the standby is known to have replayed `target` (no query)."""
        return ((target.wal is None or self.replayed >= target.wal)
                and (target.cursor is None or self.reached >= target.cursor))

    async def refresh(self) -> None:
        """Ask the standby how far it has replayed."""
        position = await replica_position(self.service_pool, self._checkpoint)
        self.replayed = max(self.replayed, position.replayed)
        self.reached = max(self.reached, position.cursor)
        if position.in_recovery != self.in_recovery:
            if not position.in_recovery:
                log.warning("replica_not_in_recovery", detail="the read URL names a server that is not a standby")
            self.in_recovery = position.in_recovery

    async def wait_for(self, target: ReadTarget, timeout: float,  # noqa: ASYNC109 - a bounded wait that returns False
                       watcher: ProjectionWatcher | None = None) -> bool:
        """True once the standby has replayed `target`; False after `timeout` seconds, or when the standby
        cannot be asked (the caller then reads on the primary)."""
        if self.covers(target):
            return True
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                return await self._wait(target, time.monotonic() + timeout, watcher)
        except WAIT_ERRORS as exc:
            if not isinstance(exc, TimeoutError):
                log.warning("replica_unavailable", error=repr(exc)[:200])
            return self.covers(target)

    async def _wait(self, target: ReadTarget, deadline: float, watcher: ProjectionWatcher | None) -> bool:
        await self.refresh()
        if self.covers(target):
            return True
        if target.cursor is not None and watcher is not None and self.reached < target.cursor:
            # Not applied on the standby: first wait for the projector on the primary (woken by its notice).
            if not await watcher.wait_for(target.cursor, deadline - time.monotonic()):
                return False
        delay = 0.001
        while not self.covers(target):
            await asyncio.sleep(delay)  # poll: a standby cannot LISTEN; bounded by the caller's timeout
            await self.refresh()
            delay = min(delay * 2, self._max_poll)
        return True
