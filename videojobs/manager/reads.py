"""Where a read runs: on the standby (VJM_READ_DATABASE_URL) once it has replayed this runtime's writes, else on
the primary.

The rule (read-your-writes across replication; listeners/replica_reads.py): a read that follows a write
through the same runtime (this manager and every one derived from it with as_user/as_service) waits, at
most `consistency_timeout` seconds, until the standby has replayed past that write; a read of the read
models (lists, stats) also until the projector's checkpoint, as the standby has replayed it, has passed the
write's event. Past the bound, or when the standby fails the read, the read runs on the primary (after the
usual wait for the projector, within what is left of the bound). Which write to wait for: the
primary's WAL position, read once after the newest write (WriteTracker.epoch), is at or past its commit
(the flush position when this process's pools commit synchronously, else the insert position).

Without a standby every read runs on the primary as it always has, the read models after read_your_writes().
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import structlog

from listeners import ReadTarget
from statemachine import ConcurrencyConflict, DatabaseUnavailable
from store.replica import primary_wal_position

from .session import Session, translated_call

log = structlog.get_logger("vjm.reads")
T = TypeVar("T")


async def read_on(session: Session, read: Callable[[asyncpg.Connection], Awaitable[T]], *, models: bool) -> T:
    """`read(conn)` on a connection acting as the caller: the standby's when it has caught up, else the primary's.

    `models`: the read reads the read models (jobs, counters), not only the log. A standby that fails
    the read (its connection lost, the query cancelled by a recovery conflict) has it run again on the
    primary: reads are idempotent.
    """
    runtime = session.runtime
    started = time.monotonic()
    replica = runtime.replica
    if replica is not None and await _standby_caught_up(session, models):
        try:
            async with session.caller_connection(replica.service_pool, replica.user_pool) as conn:
                result = await read(conn)
            replica.routed += 1
            return result
        except (DatabaseUnavailable, ConcurrencyConflict) as exc:
            replica.fallbacks += 1
            log.warning("replica_read_fell_back", reason="failed", error=str(exc)[:200])
    if models:
        await session.read_your_writes(max(0.0, runtime.consistency_timeout - (time.monotonic() - started)))
    async with session.caller_connection(runtime.service_pool, runtime.user_pool) as conn:
        return await read(conn)


async def _standby_caught_up(session: Session, models: bool) -> bool:
    """Whether the standby has replayed this runtime's writes, waiting at most consistency_timeout."""
    runtime = session.runtime
    replica = runtime.replica
    assert replica is not None
    target = ReadTarget(wal=await written_wal(session), cursor=runtime.writes.cursor if models else None)
    if await replica.wait_for(target, runtime.consistency_timeout, runtime.watcher if models else None):
        return True
    replica.fallbacks += 1
    log.warning("replica_read_fell_back", reason="behind", wal=target.wal, cursor=target.cursor,
                replayed=replica.replayed, reached=replica.reached, timeout=runtime.consistency_timeout)
    return False


async def written_wal(session: Session) -> int | None:
    """The primary's WAL position read after the newest use of the primary through this runtime (None: it was never
    used). Read once per epoch: concurrent readers share one query."""
    writes = session.runtime.writes
    if writes.epoch == 0:
        return None
    if writes.wal is not None and writes.wal[0] >= writes.epoch:
        return writes.wal[1]
    async with writes.capturing:
        epoch = writes.epoch  # read before the position: every use counted in it had returned
        if writes.wal is None or writes.wal[0] < epoch:
            replica = session.runtime.replica
            flushed = replica is not None and replica.commits_flushed
            writes.wal = (epoch, await translated_call(primary_wal_position(session.runtime.service_pool,
                                                                            flushed=flushed)))
        return writes.wal[1]
