"""Replay (rebuild and verify): stream the log and the live rows, shadow tables, recounts and their differences."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from asyncpg import Record

from ..executor import Connection, Executor
from ..models import Event, construct_valid, event_from_row
from ..queries import execute, fetch_all, fetch_value, stream_rows
from .apply import daily_columns, platform_columns, stats_columns
from .rows import (
    DAILY_FIELDS,
    JOB_COLUMNS,
    PLATFORM_FIELDS,
    STATS_FIELDS,
    DailyKey,
    Difference,
    JobRow,
    PlatformKey,
    StatsKey,
)

# Each live read model, with the queries that make it equal its shadow table (merge_replay).
_MERGES = (("jobs", "jobs_replay_merge", "jobs_replay_prune"),
           ("job_stats", "job_stats_replay_merge", "job_stats_replay_prune"),
           ("job_stats_platform", "job_stats_platform_replay_merge", "job_stats_platform_replay_prune"),
           ("job_stats_daily", "job_stats_daily_replay_merge", "job_stats_daily_replay_prune"))


async def stream_events_by_job(conn: Connection, upto: tuple[int, int], prefetch: int = 5000) -> AsyncIterator[Event]:
    """Every event up to `upto`, grouped by job in version order; call inside a transaction."""
    async for row in stream_rows(conn, "event_get_all_by_job", prefetch=prefetch, upto_xact_id=upto[0],
                            upto_position=upto[1]):
        yield event_from_row(row)


async def create_replay_tables(conn: Connection) -> None:
    """Temporary shadow tables (dropped at commit) for a replay."""
    await execute(conn, "replay_tables_create")


async def copy_replay_jobs(conn: Connection, rows: Sequence[JobRow]) -> None:
    """Bulk-load replayed job rows into the shadow table (COPY)."""
    if rows:
        records = [tuple(getattr(r, c) for c in JOB_COLUMNS) for r in rows]
        await conn.copy_records_to_table("jobs_replay", records=records, columns=JOB_COLUMNS)


async def copy_replay_stats(conn: Connection, stats: Mapping[StatsKey, list[int]],
                            daily: Mapping[DailyKey, list[int]],
                            platforms: Mapping[PlatformKey, list[int]] | None = None) -> None:
    """Bulk-load replayed stats counters, platform counters and daily buckets into the shadow tables."""
    kept = {k: v for k, v in stats.items() if v[0] != 0}
    if kept:
        await _copy_columns(conn, "job_stats_replay", stats_columns(kept))
    kept_platforms = {k: v for k, v in (platforms or {}).items() if v[0] != 0}
    if kept_platforms:
        await _copy_columns(conn, "job_stats_platform_replay", platform_columns(kept_platforms))
    if daily:
        await _copy_columns(conn, "job_stats_daily_replay", daily_columns(daily))


async def _copy_columns(conn: Connection, table: str, columns: dict[str, list[Any]]) -> None:
    """COPY rows given column by column, in the table's column order."""
    await conn.copy_records_to_table(table, records=list(zip(*columns.values(), strict=True)))


async def stream_jobs(conn: Connection, prefetch: int = 5000) -> AsyncIterator[JobRow]:
    """Every projected row in job_id order; call inside a transaction."""
    async for row in stream_rows(conn, "job_get_all", prefetch=prefetch):
        yield construct_valid(JobRow, dict(row.items()))


async def fetch_stats(executor: Executor) -> dict[StatsKey, list[int]]:
    """Every stats counter row, as vectors in STATS_FIELDS order."""
    rows = await fetch_all(executor, "job_stats_get_all")
    return {(r["scope"], r["scope_id"]): [r[f] for f in STATS_FIELDS] for r in rows}


async def fetch_platform_stats(executor: Executor) -> dict[PlatformKey, list[int]]:
    """Every platform counter row, as vectors in PLATFORM_FIELDS order."""
    rows = await fetch_all(executor, "job_stats_platform_get_all")
    return {(r["scope"], r["scope_id"], r["platform_target"]): [r[f] for f in PLATFORM_FIELDS] for r in rows}


async def fetch_daily(executor: Executor) -> dict[DailyKey, list[int]]:
    """Every daily bucket, as vectors in DAILY_FIELDS order."""
    rows = await fetch_all(executor, "job_stats_daily_get_all")
    return {(r["scope"], r["scope_id"], r["day"]): [r[f] for f in DAILY_FIELDS] for r in rows}


async def diff_stats_recount(executor: Executor, limit: int = 100) -> list[Difference]:
    """Stats and platform counters that differ from a recount over vjm.jobs (read-only)."""
    found = [_difference("job_stats_recount", row)
             for row in await fetch_all(executor, "job_stats_recount_diff", limit=limit)]
    found += [_difference("job_stats_platform_recount", row)
              for row in await fetch_all(executor, "job_stats_platform_recount_diff", limit=limit)]
    return found


async def transition_counts(executor: Executor) -> dict[str, int]:
    """Events applied to the read models, by type (what monitoring exports)."""
    return {r["type"]: r["events"] for r in await fetch_all(executor, "transition_counts_get")}


async def diff_transition_counts(executor: Executor, cursor: tuple[int, int]) -> list[Difference]:
    """Counters by type that differ from a recount of the log up to `cursor` (read-only)."""
    rows = await fetch_all(executor, "transition_counts_recount_diff", upto_xact_id=cursor[0],
                           upto_position=cursor[1])
    return [_difference("transition_counts", row) for row in rows]


async def recount_transitions(conn: Connection, cursor: tuple[int, int]) -> int:
    """Make the counters by type a recount of the log up to `cursor` (rebuild); rows changed."""
    return int(await fetch_value(conn, "transition_counts_recount", upto_xact_id=cursor[0], upto_position=cursor[1]))


async def diff_run_queue(executor: Executor, limit: int = 100) -> list[Difference]:
    """Entries of the run queue (vjm.run_queue, kept by the guard) that differ from the log."""
    return [_difference("job_queue", row) for row in await fetch_all(executor, "job_queue_diff", limit=limit)]


async def diff_idempotency_keys(executor: Executor, limit: int = 100) -> list[Difference]:
    """Idempotency keys (vjm.idempotency_keys, kept by the guard) that differ from the creates in the log."""
    return [_difference("idempotency_keys", row)
            for row in await fetch_all(executor, "idempotency_key_diff", limit=limit)]


def _difference(table: str, row: Record) -> Difference:
    live, expected = row["live"], row["replay"]
    columns: tuple[str, ...] = ()
    if live is not None and expected is not None:
        columns = tuple(sorted(k for k in set(live) | set(expected) if live.get(k) != expected.get(k)))
    return Difference(table=table, key=str(row["key"]), kind=row["kind"], columns=columns,
                      live=live, expected=expected)


async def merge_replay(conn: Connection) -> dict[str, int]:
    """Make the live tables equal the shadow tables, in place; returns rows changed per table."""
    changed: dict[str, int] = {}
    for table, merge, prune in _MERGES:
        merged = await execute(conn, merge)
        pruned = await execute(conn, prune)
        changed[table] = int(merged.split()[-1]) + int(pruned.split()[-1])
    return changed
