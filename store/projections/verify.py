"""Verify: compare the live read models with a replay of the events, and stats with a recount.

It runs in one REPEATABLE READ, READ ONLY transaction, so it never gets a
transaction id and never holds the commit-safe horizon back: the projector keeps
projecting while a verify of any size runs. The live tables and the checkpoint C
come from the same snapshot (the projector writes them atomically); the replay
folds every event up to C. Rows are compared as two streams in job_id order
(the replay streams events grouped by job), so memory stays flat; stats and
daily buckets are per scope and compared as dicts; the stats are also recounted
from vjm.jobs in SQL (docs/ARCHITECTURE.md, invariant 8). The run queue (vjm.run_queue, kept by the
guard, not by the projector) is checked against the log: an entry per job that is
not deleted, queued exactly when its head is, with its place, platform and budget; so are
the idempotency keys (each names the newest create with its owner and key, and every key
younger than the window has one).
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from ..faults import fetch_void_targets
from ..role_connection import connect_with_role
from .checkpoints import get_checkpoint, get_leadership, lift_statement_timeout, sample_lag
from .fold import Voids, fold
from .rebuild import add_into, chunks_by_job
from .replay import (
    diff_idempotency_keys,
    diff_run_queue,
    diff_stats_recount,
    diff_transition_counts,
    fetch_daily,
    fetch_platform_stats,
    fetch_stats,
    stream_events_by_job,
    stream_jobs,
)
from .rows import DAILY_FIELDS, PLATFORM_FIELDS, STATS_FIELDS, Difference, JobRow

log = structlog.get_logger("vjm.replay")


@dataclass(frozen=True)
class VerifyResult:
    """Differences between the live read models and a replay/recount; `ok` when none."""

    events: int
    jobs: int
    cursor: tuple[int, int]
    differences: list[Difference] = field(default_factory=list)
    behind: int = 0                      # events committed after the checkpoint: not projected yet
    projector_live: bool | None = None   # a projector holds the lease (None: this role may not read it)

    @property
    def ok(self) -> bool:
        """True when live equals replay and stats equal a recount (up to the checkpoint)."""
        return not self.differences

    @property
    def stalled(self) -> bool:
        """Events wait behind the checkpoint and no projector is applying them: the read models are
        consistent, but with a log they do not reflect (a projection that never ran is "ok" over nothing)."""
        return self.behind > 0 and not self.projector_live

    @property
    def exit_code(self) -> int:
        """0 when ok and not stalled, 1 otherwise (for `vjm projections verify`)."""
        return 0 if self.ok and not self.stalled else 1


@dataclass
class _Replay:
    """Replayed rows as a stream; stats, daily and counts fill in as it is consumed."""

    stats: dict = field(default_factory=dict)
    daily: dict = field(default_factory=dict)
    platforms: dict = field(default_factory=dict)
    events: int = 0
    jobs: int = 0

    async def rows(self, conn: asyncpg.Connection, upto: tuple[int, int]) -> AsyncIterator[JobRow]:
        voids = Voids.of(await fetch_void_targets(conn))  # as rebuild and the projector skip them
        async for chunk in chunks_by_job(stream_events_by_job(conn, upto)):
            result = fold({}, chunk, voids)
            add_into(self.stats, result.stats)
            add_into(self.daily, result.daily)
            add_into(self.platforms, result.platforms)
            self.events += len(chunk)
            for row in result.rows.values():
                if row is not None:
                    self.jobs += 1
                    yield row


async def verify_projections(database_url: str, *, name: str = "main", limit: int = 100,
                             role: str | None = None) -> VerifyResult:
    """Compare the live read models with a replay, and stats with a recount."""
    conn = await connect_with_role(database_url, role)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await lift_statement_timeout(conn)  # a replay of the whole log outlasts any login's statement_timeout
            checkpoint = await get_checkpoint(conn, name)
            cursor = checkpoint.cursor if checkpoint else (0, 0)
            replay = _Replay()
            differences = [d async for d in _diff_rows(stream_jobs(conn), replay.rows(conn, cursor))][:limit]
            differences += _diff_vectors("job_stats", await fetch_stats(conn), _nonzero(replay.stats), STATS_FIELDS)
            differences += _diff_vectors("job_stats_platform", await fetch_platform_stats(conn),
                                         _nonzero(replay.platforms), PLATFORM_FIELDS)
            differences += _diff_vectors("job_stats_daily", await fetch_daily(conn), replay.daily, DAILY_FIELDS)
            differences += await diff_stats_recount(conn, limit)
            differences += await diff_run_queue(conn, limit)
            differences += await diff_idempotency_keys(conn, limit)
            differences += await diff_transition_counts(conn, cursor)
            behind = (await sample_lag(conn, cursor)).events_behind
            live = await _projector_live(conn, name)
    finally:
        await conn.close()
    result = VerifyResult(replay.events, replay.jobs, cursor, differences, behind, live)
    if not result.ok:
        log.warning("projections_differ", name=name, differences=len(differences),
                    first=differences[0].model_dump(mode="json", exclude={"live", "expected"}))
    return result


async def _projector_live(conn: asyncpg.Connection, name: str) -> bool | None:
    """Whether a projector holds the lease; None when this role may not read it."""
    try:
        async with conn.transaction():  # a savepoint: a refusal must not end the verify transaction
            lease = await get_leadership(conn, name)
    except asyncpg.InsufficientPrivilegeError:
        return None
    return bool(lease and lease.get("live"))


async def _diff_rows(live: AsyncIterator[JobRow], replay: AsyncIterator[JobRow]) -> AsyncIterator[Difference]:
    """Merge-join two job_id-ordered streams."""
    have, want = await anext(live, None), await anext(replay, None)
    while have is not None or want is not None:
        if want is None or (have is not None and have.job_id < want.job_id):
            yield _job_difference("extra", have, None)
            have = await anext(live, None)
        elif have is None or want.job_id < have.job_id:
            yield _job_difference("missing", None, want)
            want = await anext(replay, None)
        else:
            if _comparable(have) != _comparable(want):
                yield _job_difference("different", have, want)
            have, want = await anext(live, None), await anext(replay, None)


def _comparable(row: JobRow) -> dict[str, Any]:
    """Row values as stored: progress_percent is a real (float4) column."""
    values = dict(row)
    values["progress_percent"] = struct.unpack("f", struct.pack("f", values["progress_percent"]))[0]
    return values


def _job_difference(kind: str, live: JobRow | None, expected: JobRow | None) -> Difference:
    columns: tuple[str, ...] = ()
    if live is not None and expected is not None:
        a, b = _comparable(live), _comparable(expected)
        columns = tuple(sorted(k for k in a if a[k] != b[k]))
    row = live or expected
    if row is None:
        raise ValueError("a difference needs the live row, the expected row, or both")
    key = row.job_id
    return Difference(table="jobs", key=str(key), kind=kind, columns=columns,
                      live=live.model_dump(mode="json") if live else None,
                      expected=expected.model_dump(mode="json") if expected else None)


def _nonzero(vectors: dict) -> dict:
    return {k: v for k, v in vectors.items() if any(v)}


def _diff_vectors(table: str, live: dict, expected: dict, fields: tuple[str, ...]) -> list[Difference]:
    """Per-scope counters that are missing, extra or different."""
    found = []
    for key in sorted(set(live) | set(expected), key=str):
        have, want = live.get(key), expected.get(key)
        if have == want:
            continue
        kind = "missing" if have is None else "extra" if want is None else "different"
        columns = tuple(f for f, a, b in zip(fields, have or [], want or [], strict=False) if a != b)
        found.append(Difference(table=table, key=":".join(map(str, key)), kind=kind, columns=columns,
                                live=dict(zip(fields, have, strict=True)) if have else None,
                                expected=dict(zip(fields, want, strict=True)) if want else None))
    return found
