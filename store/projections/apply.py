"""The projector's apply transaction: read the events after the checkpoint and the rows they touch, write a batch.

The fold (store/projections/fold.py, pure) decides *what* to write; this module only moves rows
in and out, set-based: one array per column, which the named queries `unnest`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from ..executor import Connection, Executor
from ..models import Event, construct_valid, event_from_row
from ..queries import execute, fetch_all, fetch_value
from .rows import (
    DAILY_FIELDS,
    JOB_COLUMNS,
    PLATFORM_FIELDS,
    STATS_FIELDS,
    DailyKey,
    JobChange,
    JobRow,
    PlatformKey,
    ProjectionWrite,
    StatsKey,
    scope_owner,
)

Columns = dict[str, list[Any]]  # one array per column, by the name of the query's parameter


async def read_events_after(executor: Executor, cursor: tuple[int, int], limit: int) -> list[Event]:
    """Committed events after `cursor` in commit-safe order (vjm.projection_horizon)."""
    rows = await fetch_all(executor, "event_get_after", after_xact_id=cursor[0], after_position=cursor[1],
                           limit=limit)
    return [event_from_row(r) for r in rows]


async def fetch_jobs(executor: Executor, job_ids: Sequence[UUID]) -> dict[UUID, JobRow]:
    """Projected rows of these jobs, by id (absent ones are missing from the dict)."""
    rows = await fetch_all(executor, "job_get_many", job_ids=list(job_ids))
    return {r["job_id"]: construct_valid(JobRow, dict(r.items())) for r in rows}


async def write_projection(conn: Connection, name: str, write: ProjectionWrite,
                           cursor: tuple[int, int], change_seq: int, events: int) -> None:
    """Write one batch and advance the checkpoint; call inside the apply transaction."""
    if write.upserts:
        await execute(conn, "job_upsert_many", **job_columns(write.upserts))
    if write.deletes:
        await execute(conn, "job_delete_many", job_ids=write.deletes)
    if write.stats:
        await _add_stats(conn, write.stats)
    if write.platforms:
        await _add_platform_stats(conn, write.platforms)
    if write.daily:
        await execute(conn, "job_stats_daily_add_many", **daily_columns(write.daily))
    if write.changes:
        await execute(conn, "job_change_insert_many", **_change_columns(write.changes))
    if write.transitions:
        await execute(conn, "transition_counts_add_many", types=list(write.transitions),
                      counts=list(write.transitions.values()))
    await execute(conn, "projection_checkpoint_advance", name=name, xact_id=cursor[0], position=cursor[1],
                  change_seq=change_seq, events=events)
    if write.notifications:
        await fetch_value(conn, "projection_notify_many", payloads=write.notifications)


async def _add_stats(conn: Connection, stats: Mapping[StatsKey, list[int]]) -> None:
    await execute(conn, "job_stats_add_many", **stats_columns(stats))
    keys = list(stats)
    await execute(conn, "job_stats_prune_empty", scope=[k[0] for k in keys], scope_id=[k[1] for k in keys])


async def _add_platform_stats(conn: Connection, platforms: Mapping[PlatformKey, list[int]]) -> None:
    await execute(conn, "job_stats_platform_add_many", **platform_columns(platforms))
    keys = list(platforms)
    await execute(conn, "job_stats_platform_prune_empty", scope=[k[0] for k in keys], scope_id=[k[1] for k in keys],
                  platform_target=[k[2] for k in keys])


def job_columns(rows: Sequence[JobRow]) -> Columns:
    """JOB_COLUMNS of the rows; output_paths as JSON text (a list of lists would go as a 2-D array)."""
    columns = {c: [getattr(r, c) for r in rows] for c in JOB_COLUMNS}
    columns["output_paths"] = [None if paths is None else json.dumps(paths) for paths in columns["output_paths"]]
    return columns


def stats_columns(stats: Mapping[StatsKey, list[int]]) -> Columns:
    """The columns of vjm.job_stats, in table order: scope, scope_id, user_id, team_id, STATS_FIELDS."""
    return _counter_columns(list(stats), {}, list(stats.values()), STATS_FIELDS)


def platform_columns(platforms: Mapping[PlatformKey, list[int]]) -> Columns:
    """The columns of vjm.job_stats_platform, in table order: ..., team_id, platform_target, PLATFORM_FIELDS."""
    keys = list(platforms)
    return _counter_columns(keys, {"platform_target": [k[2] for k in keys]}, list(platforms.values()),
                            PLATFORM_FIELDS)


def daily_columns(daily: Mapping[DailyKey, list[int]]) -> Columns:
    """The columns of vjm.job_stats_daily, in table order: ..., team_id, day, DAILY_FIELDS."""
    keys = list(daily)
    return _counter_columns(keys, {"day": [k[2] for k in keys]}, list(daily.values()), DAILY_FIELDS)


def _counter_columns(keys: Sequence[tuple[Any, ...]], extra: Columns, vectors: Sequence[list[int]],
                     fields: Sequence[str]) -> Columns:
    owners = [scope_owner(k[0], k[1]) for k in keys]
    columns: Columns = {"scope": [k[0] for k in keys], "scope_id": [k[1] for k in keys],
                        "user_id": [o[0] for o in owners], "team_id": [o[1] for o in owners], **extra}
    columns.update({f: [v[i] for v in vectors] for i, f in enumerate(fields)})
    return columns


def _change_columns(changes: Sequence[JobChange]) -> Columns:
    names = ("seq", "xact_id", "position", "job_id", "user_id", "team_id", "status", "version")
    return {n: [getattr(c, n) for c in changes] for n in names}
