"""Rebuild and verify: replay every event through the same fold the projector uses.

Both replay the events up to the projector's checkpoint C into temporary shadow
tables. Every event at or below C belongs to a finished transaction (the
checkpoint only ever passes the commit-safe horizon), so that set never changes.

- `verify_projections` runs in one REPEATABLE READ transaction: the live tables
  and C come from the same snapshot (the projector writes them atomically), so
  the comparison is exact without stopping the projector. It also recounts
  vjm.job_stats from vjm.jobs (invariant 8).
- `rebuild_projections` holds the checkpoint row FOR UPDATE for its whole
  transaction, which is the projector's leadership in practice: the active
  projector's next apply waits, nothing is applied concurrently. It then merges
  the shadow tables into the live ones *in place* (upsert what differs, delete
  what is extra) and commits. Readers keep reading the old rows under MVCC until
  that commit and are never blocked. Renaming shadow tables over the live ones
  was rejected: it takes an ACCESS EXCLUSIVE lock (blocking reads) and would drop
  the RLS policies, grants and indexes that later migrations attach to vjm.jobs.
  The checkpoint and the change feed are left as they are; the projector resumes
  after C.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import structlog

from store import connect
from store.models import Event
from store.projections import (
    Difference,
    copy_replay_jobs,
    copy_replay_stats,
    create_replay_tables,
    diff_replay,
    get_checkpoint,
    lock_checkpoint,
    merge_replay,
    stream_events_by_job,
)

from .fold import fold

log = structlog.get_logger("vjm.replay")
CHUNK_EVENTS = 5000


@dataclass(frozen=True, slots=True)
class ReplayCount:
    """Events and surviving jobs replayed into the shadow tables."""

    events: int
    jobs: int


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild replayed and changed."""

    events: int
    jobs: int
    seconds: float
    cursor: tuple[int, int]
    changed: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        """Replay throughput."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class VerifyResult:
    """Differences between the live read models and a replay/recount; `ok` when none."""

    events: int
    jobs: int
    cursor: tuple[int, int]
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when live equals replay and stats equal a recount."""
        return not self.differences

    @property
    def exit_code(self) -> int:
        """0 when ok, 1 otherwise (for `vjm projections verify`)."""
        return 0 if self.ok else 1


async def replay(conn: asyncpg.Connection, upto: tuple[int, int]) -> ReplayCount:
    """Fold every event up to `upto` into the shadow tables; call inside a transaction."""
    await create_replay_tables(conn)
    stats: dict = {}
    daily: dict = {}
    events = jobs = 0
    async for chunk in _chunks_by_job(stream_events_by_job(conn, upto)):
        result = fold({}, chunk)
        rows = [row for row in result.rows.values() if row is not None]
        await copy_replay_jobs(conn, rows)
        _add_into(stats, result.stats)
        _add_into(daily, result.daily)
        events, jobs = events + len(chunk), jobs + len(rows)
    await copy_replay_stats(conn, stats, daily)
    return ReplayCount(events, jobs)


async def _chunks_by_job(events: AsyncIterator[Event]) -> AsyncIterator[list[Event]]:
    """Lists of about CHUNK_EVENTS events that never split one job's stream."""
    chunk: list[Event] = []
    async for event in events:
        if len(chunk) >= CHUNK_EVENTS and event.job_id != chunk[-1].job_id:
            yield chunk
            chunk = []
        chunk.append(event)
    if chunk:
        yield chunk


def _add_into(total: dict, deltas: dict) -> None:
    for key, vector in deltas.items():
        current = total.setdefault(key, [0] * len(vector))
        for i, value in enumerate(vector):
            current[i] += value


async def rebuild_projections(database_url: str, *, name: str = "main") -> RebuildResult:
    """Replay all events into shadow tables and swap them into the live read models."""
    conn = await connect(database_url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            checkpoint = await lock_checkpoint(conn, name)
            count = await replay(conn, checkpoint.cursor)
            changed = await merge_replay(conn)
        result = RebuildResult(count.events, count.jobs, time.perf_counter() - started, checkpoint.cursor, changed)
    finally:
        await conn.close()
    log.info("projections_rebuilt", name=name, events=result.events, jobs=result.jobs,
             seconds=round(result.seconds, 3), changed=result.changed)
    return result


async def verify_projections(database_url: str, *, name: str = "main", limit: int = 100) -> VerifyResult:
    """Compare the live read models with a replay, and stats with a recount."""
    conn = await connect(database_url)
    try:
        async with conn.transaction(isolation="repeatable_read"):
            checkpoint = await get_checkpoint(conn, name)
            cursor = checkpoint.cursor if checkpoint else (0, 0)
            count = await replay(conn, cursor)
            differences = await diff_replay(conn, limit)
    finally:
        await conn.close()
    result = VerifyResult(count.events, count.jobs, cursor, differences)
    if not result.ok:
        log.warning("projections_differ", name=name, differences=len(differences),
                    first=differences[0].model_dump(mode="json", exclude={"live", "expected"}))
    return result
