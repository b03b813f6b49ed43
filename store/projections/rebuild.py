"""Rebuild: replay every event through the same fold the projector uses, and swap it in.

The replay covers the events up to the projector's checkpoint C. Every event at
or below C belongs to a finished transaction (the checkpoint only ever passes
the commit-safe horizon), so that set never changes. Verify (store/projections/verify.py)
replays the same way but compares instead of writing.

`rebuild_projections` holds the checkpoint row FOR UPDATE for its whole
transaction, which is the projector's leadership in practice: the active
projector's next apply waits, nothing is applied concurrently. It folds the
events into temporary shadow tables (COPY), then merges them into the live ones
*in place* (upsert what differs, delete what is extra) and commits. Readers keep
reading the old rows under MVCC until that commit and are never blocked.
Renaming shadow tables over the live ones was rejected: it takes an ACCESS
EXCLUSIVE lock (blocking reads) and would drop the RLS policies, grants and
indexes that later migrations attach to vjm.jobs. The checkpoint and the change
feed are left as they are; the projector resumes after C. Dashboards are not
told about rows a rebuild repaired (a verify that found differences is the
signal to reload).

Voided events (an admin's `void`, store/projections/fold.py) are skipped as the projector skips
them: every void in the log is read first, also those after C (a void names an earlier
event, which may be at or below C).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import structlog

from ..faults import fetch_void_targets
from ..models import Event
from ..role_connection import connect_with_role
from .checkpoints import lift_statement_timeout, lock_checkpoint
from .fold import Voids, fold
from .replay import (
    copy_replay_jobs,
    copy_replay_stats,
    create_replay_tables,
    merge_replay,
    recount_transitions,
    stream_events_by_job,
)

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


async def replay(conn: asyncpg.Connection, upto: tuple[int, int]) -> ReplayCount:
    """Fold every event up to `upto` into the shadow tables, skipping voided ones; call inside a transaction."""
    await create_replay_tables(conn)
    voids = Voids.of(await fetch_void_targets(conn))
    stats: dict = {}
    daily: dict = {}
    platforms: dict = {}
    events = jobs = 0
    async for chunk in chunks_by_job(stream_events_by_job(conn, upto)):
        result = fold({}, chunk, voids)
        rows = [row for row in result.rows.values() if row is not None]
        await copy_replay_jobs(conn, rows)
        add_into(stats, result.stats)
        add_into(daily, result.daily)
        add_into(platforms, result.platforms)
        events, jobs = events + len(chunk), jobs + len(rows)
    await copy_replay_stats(conn, stats, daily, platforms)
    return ReplayCount(events, jobs)


async def chunks_by_job(events: AsyncIterator[Event]) -> AsyncIterator[list[Event]]:
    """Lists of about CHUNK_EVENTS events that never split one job's stream."""
    chunk: list[Event] = []
    async for event in events:
        if len(chunk) >= CHUNK_EVENTS and event.job_id != chunk[-1].job_id:
            yield chunk
            chunk = []
        chunk.append(event)
    if chunk:
        yield chunk


def add_into(total: dict, deltas: dict) -> None:
    """Add delta vectors into running totals, key by key."""
    for key, vector in deltas.items():
        current = total.setdefault(key, [0] * len(vector))
        for i, value in enumerate(vector):
            current[i] += value


async def rebuild_projections(database_url: str, *, name: str = "main", role: str | None = None) -> RebuildResult:
    """Replay all events into shadow tables and swap them into the live read models."""
    conn = await connect_with_role(database_url, role)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await lift_statement_timeout(conn)  # a replay of the whole log outlasts any login's statement_timeout
            checkpoint = await lock_checkpoint(conn, name)
            count = await replay(conn, checkpoint.cursor)
            changed = await merge_replay(conn)
            changed["transition_counts"] = await recount_transitions(conn, checkpoint.cursor)
        result = RebuildResult(count.events, count.jobs, time.perf_counter() - started, checkpoint.cursor, changed)
    finally:
        await conn.close()
    log.info("projections_rebuilt", name=name, events=result.events, jobs=result.jobs,
             seconds=round(result.seconds, 3), changed=result.changed)
    return result
