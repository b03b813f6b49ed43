"""SQL access for the read models: checkpoints, projected rows, stats, change feed, replay.

listeners/ decide *what* to write (listeners/fold.py is pure); this module only
moves rows in and out, set-based (one array per column, `unnest`), with the
named queries of sql/queries/listeners.sql. Rows leave as frozen pydantic models.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from .models import Event, construct_valid, event_from_row
from .sqlfiles import load_queries

Executor = asyncpg.Pool | asyncpg.Connection
StatsKey = tuple[str, str]            # (scope, scope_id)
DailyKey = tuple[str, str, date]      # (scope, scope_id, day)
PlatformKey = tuple[str, str, str]    # (scope, scope_id, platform_target)

JOB_COLUMNS = (
    "job_id", "user_id", "team_id", "status", "attempt", "attempts_left", "max_attempts", "worker_id",
    "original_filename", "original_filesize", "clip_count", "quality_preset", "enhancement_level",
    "platform_target", "progress_percent", "clips_done", "output_paths", "error_message", "created_at",
    "started_at", "completed_at", "cancelled_at", "processing_time", "last_activity_at", "version", "last_position",
)
# Deltas and totals: total, queued, processing, completed, failed, cancelled, timed, processing ms.
STATS_FIELDS = ("total_jobs", "queued_jobs", "processing_jobs", "completed_jobs", "failed_jobs",
                "cancelled_jobs", "timed_jobs", "total_processing_ms")
# Per scope and platform: the first six of STATS_FIELDS (a job's contribution, cut short).
PLATFORM_FIELDS = STATS_FIELDS[:6]
DAILY_FIELDS = ("completed_jobs", "failed_jobs", "cancelled_jobs", "processing_ms")


def _q(name: str) -> str:
    return load_queries()[name]


class JobRow(BaseModel):
    """One row of vjm.jobs: the current state of a job that is not deleted."""

    model_config = ConfigDict(frozen=True)

    job_id: UUID
    user_id: str
    team_id: UUID | None
    status: str
    attempt: int
    attempts_left: int
    max_attempts: int
    worker_id: str | None
    original_filename: str
    original_filesize: int
    clip_count: int
    quality_preset: str
    enhancement_level: str
    platform_target: str
    progress_percent: float
    clips_done: int
    output_paths: list[str] | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None  # completed or failed
    cancelled_at: datetime | None
    processing_time: float | None  # the last attempt's, to complete or fail
    last_activity_at: datetime
    version: int
    last_position: int


class Checkpoint(BaseModel):
    """Where a projector has got to in commit order, and its change-feed counter."""

    model_config = ConfigDict(frozen=True)

    name: str
    xact_id: int
    position: int
    change_seq: int
    events: int

    @property
    def cursor(self) -> tuple[int, int]:
        """(xact_id, position) of the last applied event."""
        return (self.xact_id, self.position)


class JobChange(BaseModel):
    """One entry of the change feed: a job's state after an applied batch."""

    model_config = ConfigDict(frozen=True)

    seq: int
    xact_id: int
    position: int
    job_id: UUID
    user_id: str
    team_id: UUID | None
    status: str
    version: int
    changed_at: datetime | None = None


class StuckJob(BaseModel):
    """A processing job idle for longer than the timeout, as the projection last saw it."""

    model_config = ConfigDict(frozen=True)

    job_id: UUID
    version: int
    attempt: int
    attempts_left: int
    idle_seconds: float


class LagSample(BaseModel):
    """How far a cursor is behind the log, and what holds the commit-safe horizon back."""

    model_config = ConfigDict(frozen=True)

    xmin: int
    events_behind: int
    seconds_behind: float
    held_events: int
    held_seconds: float
    blocking_pid: int | None
    blocking_state: str | None = None           # e.g. 'idle in transaction'; None when not visible to the caller
    blocking_xact_seconds: float | None = None  # age of its transaction; None when not visible to the caller


class Difference(BaseModel):
    """One row that differs between a live read model and its replay or recount."""

    model_config = ConfigDict(frozen=True)

    table: str
    key: str
    kind: str  # missing (in live), extra (in live), different
    columns: tuple[str, ...] = ()
    live: dict[str, Any] | None = None
    expected: dict[str, Any] | None = None


@dataclass
class ProjectionWrite:
    """Everything one apply transaction writes (built by listeners/fold.py)."""

    upserts: list[JobRow] = field(default_factory=list)
    deletes: list[UUID] = field(default_factory=list)
    stats: dict[StatsKey, list[int]] = field(default_factory=dict)
    daily: dict[DailyKey, list[int]] = field(default_factory=dict)
    platforms: dict[PlatformKey, list[int]] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)  # events applied, by type
    changes: list[JobChange] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)


def scope_owner(scope: str, scope_id: str) -> tuple[str | None, UUID | None]:
    """(user_id, team_id) columns of a stats row ('member' scope ids are '<team id>:<owner>')."""
    if scope == "user":
        return scope_id, None
    if scope == "member":
        team, _, user = scope_id.partition(":")
        return user, UUID(team)
    return None, UUID(scope_id)


# -- checkpoints and leadership ------------------------------------------------------------

async def ensure_checkpoint(executor: Executor, name: str) -> None:
    """Create the projector's checkpoint row if missing."""
    await executor.execute(_q("projection_checkpoint_ensure"), name)


async def get_checkpoint(executor: Executor, name: str) -> Checkpoint | None:
    """The checkpoint, unlocked (None if the projector never ran)."""
    row = await executor.fetchrow(_q("projection_checkpoint_get"), name)
    return Checkpoint.model_validate(dict(row.items())) if row else None


async def lock_checkpoint(conn: asyncpg.Connection, name: str) -> Checkpoint:
    """The checkpoint, locked FOR UPDATE until the transaction ends."""
    row = await conn.fetchrow(_q("projection_checkpoint_lock"), name)
    if row is None:
        raise LookupError(f"no projection checkpoint named {name!r}")
    return Checkpoint.model_validate(dict(row.items()))


async def try_lock_leadership(conn: asyncpg.Connection, name: str, ttl: float = 30.0) -> bool:
    """Take or renew the projector's lease (vjm.projector_leases) for `ttl` seconds; True while this session leads."""
    return bool(await conn.fetchval(_q("projection_leader_try_lock"), name, float(ttl)))


async def unlock_leadership(conn: asyncpg.Connection, name: str) -> None:
    """Give the projector's lease up."""
    await conn.fetchval(_q("projection_leader_unlock"), name)


async def get_leadership(executor: Executor, name: str) -> dict[str, Any] | None:
    """Who holds the projector's lease: name, holder_pid, acquired_at, renewed_at, expires_at, live."""
    row = await executor.fetchrow(_q("projection_leader_get"), name)
    return dict(row.items()) if row else None


async def lift_statement_timeout(conn: asyncpg.Connection) -> None:
    """Inside a maintenance transaction: no statement_timeout until it ends (SET LOCAL)."""
    await conn.fetchval(_q("maintenance_statement_timeout_lift"))


async def arm_doorbell(conn: asyncpg.Connection, cursor: tuple[int, int]) -> str:
    """Before sleeping: 'armed' (appends now ring; release it on waking), 'pending', 'held' or 'busy' (vjm.arm_doorbell)."""
    return await conn.fetchval(_q("projection_doorbell_arm"), cursor[0], cursor[1])


async def release_doorbell(conn: asyncpg.Connection) -> None:
    """After waking from an 'armed' sleep: appends stop ringing."""
    await conn.fetchval(_q("projection_doorbell_release"))


async def doorbell_holders(conn: Executor) -> list[dict[str, Any]]:
    """The sessions holding or awaiting the doorbell lock (pid, mode, granted)."""
    return [dict(r.items()) for r in await conn.fetch(_q("projection_doorbell_holders"))]


async def sample_lag(executor: Executor, cursor: tuple[int, int]) -> LagSample:
    """Events after `cursor`, and those held behind the horizon by an open transaction."""
    row = await executor.fetchrow(_q("projection_lag_get"), cursor[0], cursor[1])
    return LagSample(xmin=row["xmin"], events_behind=row["events"], seconds_behind=row["seconds_behind"],
                     held_events=row["held"], held_seconds=row["held_seconds"], blocking_pid=row["blocking_pid"],
                     blocking_state=row["blocking_state"], blocking_xact_seconds=row["blocking_xact_seconds"])


# -- the apply transaction ---------------------------------------------------------------------

async def read_events_after(conn: Executor, cursor: tuple[int, int], limit: int) -> list[Event]:
    """Committed events after `cursor` in commit-safe order (vjm.projection_horizon)."""
    rows = await conn.fetch(_q("event_get_after"), cursor[0], cursor[1], limit)
    return [event_from_row(r) for r in rows]


async def fetch_jobs(conn: Executor, job_ids: Sequence[UUID]) -> dict[UUID, JobRow]:
    """Projected rows of these jobs, by id (absent ones are missing from the dict)."""
    rows = await conn.fetch(_q("job_get_many"), list(job_ids))
    return {r["job_id"]: construct_valid(JobRow, dict(r.items())) for r in rows}


async def write_projection(conn: asyncpg.Connection, name: str, write: ProjectionWrite,
                           cursor: tuple[int, int], change_seq: int, events: int) -> None:
    """Write one batch and advance the checkpoint; call inside the apply transaction."""
    if write.upserts:
        await conn.execute(_q("job_upsert_many"), *_job_columns(write.upserts))
    if write.deletes:
        await conn.execute(_q("job_delete_many"), write.deletes)
    if write.stats:
        await _add_stats(conn, write.stats)
    if write.platforms:
        await _add_platform_stats(conn, write.platforms)
    if write.daily:
        await conn.execute(_q("job_stats_daily_add_many"), *_daily_columns(write.daily))
    if write.changes:
        await conn.execute(_q("job_change_insert_many"), *_change_columns(write.changes))
    if write.transitions:
        await conn.execute(_q("transition_counts_add_many"), list(write.transitions), list(write.transitions.values()))
    await conn.execute(_q("projection_checkpoint_advance"), name, cursor[0], cursor[1], change_seq, events)
    if write.notifications:
        await conn.fetchval(_q("projection_notify_many"), write.notifications)


async def _add_stats(conn: asyncpg.Connection, stats: Mapping[StatsKey, list[int]]) -> None:
    await conn.execute(_q("job_stats_add_many"), *_stats_columns(stats))
    keys = list(stats)
    await conn.execute(_q("job_stats_prune_empty"), [k[0] for k in keys], [k[1] for k in keys])


async def _add_platform_stats(conn: asyncpg.Connection, platforms: Mapping[PlatformKey, list[int]]) -> None:
    await conn.execute(_q("job_stats_platform_add_many"), *_platform_columns(platforms))
    keys = list(platforms)
    await conn.execute(_q("job_stats_platform_prune_empty"), [k[0] for k in keys], [k[1] for k in keys],
                       [k[2] for k in keys])


def _job_columns(rows: Sequence[JobRow]) -> list[list[Any]]:
    # output_paths goes as JSON text: a list of lists would be sent as a 2-D array; see job_upsert_many.
    columns = [[getattr(r, c) for r in rows] for c in JOB_COLUMNS]
    index = JOB_COLUMNS.index("output_paths")
    columns[index] = [None if paths is None else json.dumps(paths) for paths in columns[index]]
    return columns


def _stats_columns(stats: Mapping[StatsKey, list[int]]) -> list[list[Any]]:
    owners = [scope_owner(*k) for k in stats]
    columns: list[list[Any]] = [[k[0] for k in stats], [k[1] for k in stats],
                                [o[0] for o in owners], [o[1] for o in owners]]
    columns += [[v[i] for v in stats.values()] for i in range(len(STATS_FIELDS))]
    return columns


def _platform_columns(platforms: Mapping[PlatformKey, list[int]]) -> list[list[Any]]:
    owners = [scope_owner(k[0], k[1]) for k in platforms]
    columns: list[list[Any]] = [[k[0] for k in platforms], [k[1] for k in platforms], [o[0] for o in owners],
                                [o[1] for o in owners], [k[2] for k in platforms]]
    columns += [[v[i] for v in platforms.values()] for i in range(len(PLATFORM_FIELDS))]
    return columns


def _daily_columns(daily: Mapping[DailyKey, list[int]]) -> list[list[Any]]:
    owners = [scope_owner(k[0], k[1]) for k in daily]
    columns: list[list[Any]] = [[k[0] for k in daily], [k[1] for k in daily], [o[0] for o in owners],
                                [o[1] for o in owners], [k[2] for k in daily]]
    columns += [[v[i] for v in daily.values()] for i in range(len(DAILY_FIELDS))]
    return columns


def _change_columns(changes: Sequence[JobChange]) -> list[list[Any]]:
    names = ("seq", "xact_id", "position", "job_id", "user_id", "team_id", "status", "version")
    return [[getattr(c, n) for c in changes] for n in names]


# -- change feed, stuck jobs --------------------------------------------------------------------

async def fetch_changes(executor: Executor, after_seq: int, limit: int) -> list[JobChange]:
    """Change-feed entries after `after_seq`, in order."""
    rows = await executor.fetch(_q("job_change_get_after"), after_seq, limit)
    return [JobChange.model_validate(dict(r.items())) for r in rows]


async def fetch_last_change_seq(executor: Executor) -> int:
    """The newest change-feed sequence number (0 when the feed is empty)."""
    return int(await executor.fetchval(_q("job_change_get_last")))


async def fetch_change_visibility(conn: asyncpg.Connection, seqs: Sequence[int]) -> set[int]:
    """The seqs RLS lets the caller read (vjm.job_changes_visible); call acting as the end user (acting_as)."""
    rows = await conn.fetch(_q("job_change_visible_many"), list(seqs))
    return {r["seq"] for r in rows}


async def prune_changes(executor: Executor, older_than_seconds: float) -> int:
    """Delete change-feed entries older than the given age; returns how many."""
    status = await executor.execute(_q("job_change_prune"), float(older_than_seconds))
    return int(status.split()[-1])


async def find_stuck_jobs(executor: Executor, timeout_seconds: float, limit: int) -> list[StuckJob]:
    """Processing jobs with no activity for longer than `timeout_seconds`, oldest first."""
    rows = await executor.fetch(_q("job_get_stuck"), float(timeout_seconds), limit)
    return [StuckJob.model_validate(dict(r.items())) for r in rows]


# -- replay (rebuild and verify) ----------------------------------------------------------------

async def stream_events_by_job(conn: asyncpg.Connection, upto: tuple[int, int],
                               prefetch: int = 5000) -> AsyncIterator[Event]:
    """Every event up to `upto`, grouped by job in version order; call inside a transaction."""
    async for row in conn.cursor(_q("event_get_all_by_job"), upto[0], upto[1], prefetch=prefetch):
        yield event_from_row(row)


async def create_replay_tables(conn: asyncpg.Connection) -> None:
    """Temporary shadow tables (dropped at commit) for a replay."""
    await conn.execute(_q("replay_tables_create"))


async def copy_replay_jobs(conn: asyncpg.Connection, rows: Sequence[JobRow]) -> None:
    """Bulk-load replayed job rows into the shadow table (COPY)."""
    if rows:
        records = [tuple(getattr(r, c) for c in JOB_COLUMNS) for r in rows]
        await conn.copy_records_to_table("jobs_replay", records=records, columns=JOB_COLUMNS)


async def copy_replay_stats(conn: asyncpg.Connection, stats: Mapping[StatsKey, list[int]],
                            daily: Mapping[DailyKey, list[int]],
                            platforms: Mapping[PlatformKey, list[int]] | None = None) -> None:
    """Bulk-load replayed stats counters, platform counters and daily buckets into the shadow tables."""
    kept = {k: v for k, v in stats.items() if v[0] != 0}
    if kept:
        await conn.copy_records_to_table("job_stats_replay", records=list(zip(*_stats_columns(kept), strict=True)))
    kept_platforms = {k: v for k, v in (platforms or {}).items() if v[0] != 0}
    if kept_platforms:
        await conn.copy_records_to_table("job_stats_platform_replay",
                                         records=list(zip(*_platform_columns(kept_platforms), strict=True)))
    if daily:
        await conn.copy_records_to_table("job_stats_daily_replay", records=list(zip(*_daily_columns(daily), strict=True)))


async def stream_jobs(conn: asyncpg.Connection, prefetch: int = 5000) -> AsyncIterator[JobRow]:
    """Every projected row in job_id order; call inside a transaction."""
    async for row in conn.cursor(_q("job_get_all"), prefetch=prefetch):
        yield construct_valid(JobRow, dict(row.items()))


async def fetch_stats(executor: Executor) -> dict[StatsKey, list[int]]:
    """Every stats counter row, as vectors in STATS_FIELDS order."""
    rows = await executor.fetch(_q("job_stats_get_all"))
    return {(r["scope"], r["scope_id"]): [r[f] for f in STATS_FIELDS] for r in rows}


async def fetch_platform_stats(executor: Executor) -> dict[PlatformKey, list[int]]:
    """Every platform counter row, as vectors in PLATFORM_FIELDS order."""
    rows = await executor.fetch(_q("job_stats_platform_get_all"))
    return {(r["scope"], r["scope_id"], r["platform_target"]): [r[f] for f in PLATFORM_FIELDS] for r in rows}


async def fetch_daily(executor: Executor) -> dict[DailyKey, list[int]]:
    """Every daily bucket, as vectors in DAILY_FIELDS order."""
    rows = await executor.fetch(_q("job_stats_daily_get_all"))
    return {(r["scope"], r["scope_id"], r["day"]): [r[f] for f in DAILY_FIELDS] for r in rows}


async def diff_stats_recount(executor: Executor, limit: int = 100) -> list[Difference]:
    """Stats and platform counters that differ from a recount over vjm.jobs (read-only)."""
    found = [_difference("job_stats_recount", row) for row in await executor.fetch(_q("job_stats_recount_diff"), limit)]
    found += [_difference("job_stats_platform_recount", row)
              for row in await executor.fetch(_q("job_stats_platform_recount_diff"), limit)]
    return found


async def transition_counts(executor: Executor) -> dict[str, int]:
    """Events applied to the read models, by type (what monitoring exports)."""
    return {r["type"]: r["events"] for r in await executor.fetch(_q("transition_counts_get"))}


async def diff_transition_counts(executor: Executor, cursor: tuple[int, int]) -> list[Difference]:
    """Counters by type that differ from a recount of the log up to `cursor` (read-only)."""
    return [_difference("transition_counts", row)
            for row in await executor.fetch(_q("transition_counts_recount_diff"), *cursor)]


async def recount_transitions(conn: asyncpg.Connection, cursor: tuple[int, int]) -> int:
    """Make the counters by type a recount of the log up to `cursor` (rebuild); rows changed."""
    return int(await conn.fetchval(_q("transition_counts_recount"), *cursor))


async def diff_run_queue(executor: Executor, limit: int = 100) -> list[Difference]:
    """Entries of the run queue (vjm.run_queue, kept by the guard) that differ from the log."""
    return [_difference("job_queue", row) for row in await executor.fetch(_q("job_queue_diff"), limit)]


def _difference(table: str, row: Any) -> Difference:
    live, expected = row["live"], row["replay"]
    columns: tuple[str, ...] = ()
    if live is not None and expected is not None:
        columns = tuple(sorted(k for k in set(live) | set(expected) if live.get(k) != expected.get(k)))
    return Difference(table=table, key=str(row["key"]), kind=row["kind"], columns=columns,
                      live=live, expected=expected)


async def merge_replay(conn: asyncpg.Connection) -> dict[str, int]:
    """Make the live tables equal the shadow tables, in place; returns rows changed per table."""
    changed: dict[str, int] = {}
    for table, merge, prune in (("jobs", "jobs_replay_merge", "jobs_replay_prune"),
                                ("job_stats", "job_stats_replay_merge", "job_stats_replay_prune"),
                                ("job_stats_platform", "job_stats_platform_replay_merge",
                                 "job_stats_platform_replay_prune"),
                                ("job_stats_daily", "job_stats_daily_replay_merge", "job_stats_daily_replay_prune")):
        merged = await conn.execute(_q(merge))
        pruned = await conn.execute(_q(prune))
        changed[table] = int(merged.split()[-1]) + int(pruned.split()[-1])
    return changed
