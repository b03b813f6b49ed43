"""The projector's apply transaction: lock, read a batch with the rows it touches, write it, in three statements.

The fold (store/projections/fold.py, pure) decides the rows; the statements of
sql/queries/projector_batch.sql move them, set-based: `lock_batch` locks the checkpoint (and has the
transaction's statements keep one plan each), `read_batch` reads the events after
the checkpoint with each touched job's projected row in one statement, and `write_batch`
writes the rows (one array of vjm.jobs records, which the query `unnest`s) and derives in the same
statement the counter deltas (rows before and after), the change feed and its notices from
the batch's events (each job's last one, which the client holds), and advances the checkpoint.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ..executor import Connection
from ..models import Event, event_from_values
from ..queries import fetch_all, fetch_one
from .checkpoints import lock_checkpoint
from .rows import (
    DAILY_FIELDS,
    GENERATED_JOB_COLUMNS,
    JOB_COLUMNS,
    PLATFORM_FIELDS,
    STATS_FIELDS,
    Checkpoint,
    DailyKey,
    FoldedRows,
    PlatformKey,
    StatsKey,
    scope_owner,
)

Columns = dict[str, list[Any]]  # one array per column, by the name of the query's parameter
_EVENT_WIDTH = 14  # projection_batch_read: an event's columns, then `voids`, then the job's


@dataclass(frozen=True, slots=True)
class BatchRead:
    """The next events in commit-safe order, the projected rows of their jobs (dicts, by id; a job without
    one is missing), and whether any of those jobs has a void in the log (then read its voids)."""

    events: list[Event]
    before: dict[UUID, dict[str, Any]]
    voided: bool


async def lock_batch(conn: Connection, name: str) -> Checkpoint:
    """The checkpoint, locked FOR UPDATE until the apply transaction ends, whose later statements (the read and the
    write) each keep one plan for the session (projection_batch_lock)."""
    return await lock_checkpoint(conn, name, "projection_batch_lock")


async def read_batch(conn: Connection, cursor: tuple[int, int], limit: int) -> BatchRead:
    """Committed events after `cursor` (vjm.projection_horizon) and the rows they touch, in one statement."""
    records = await fetch_all(conn, "projection_batch_read", after_xact_id=cursor[0], after_position=cursor[1],
                              limit=limit)
    events: list[Event] = []
    before: dict[UUID, dict[str, Any]] = {}
    voided = False
    for record in records:
        values = tuple(record)
        events.append(event_from_values(values))
        if values[_EVENT_WIDTH]:
            voided = True
        if values[_EVENT_WIDTH + 1] is not None:
            before[values[_EVENT_WIDTH + 1]] = dict(zip(JOB_COLUMNS, values[_EVENT_WIDTH + 1:], strict=True))
    return BatchRead(events, before, voided)


async def write_batch(conn: Connection, name: str, checkpoint: Checkpoint, folded: FoldedRows,
                      events: Sequence[Event], per_job_limit: int) -> tuple[int, int]:
    """Write one folded batch of `events` and advance the checkpoint to the last one, in one statement of the apply
    transaction, planned once for the session (lock_batch; every table access in it is by key); (feed entries,
    notices) written."""
    rows, cursor = folded.rows, events[-1].cursor
    row = await fetch_one(
        conn, "projection_batch_apply", name=name, xact_id=cursor[0], position=cursor[1],
        change_seq=checkpoint.change_seq, events=len(events), per_job_limit=per_job_limit,
        rows=[_as_record(r) for r in rows.values() if r is not None],
        deletes=[job_id for job_id, r in rows.items() if r is None],
        types=list(folded.transitions), counts=list(folded.transitions.values()), **_day_columns(folded.daily),
        **feed_columns(events))
    return row["jobs"], row["notifications"]


def feed_columns(events: Sequence[Event]) -> Columns:
    """The change feed's entries of a batch, as projection_batch_apply takes them: each job's last event, in the
    commit order of those events (`events` are in commit order)."""
    last: dict[UUID, Event] = {}
    for event in events:
        last.pop(event.job_id, None)  # re-inserted: the dict keeps the order of each job's last event
        last[event.job_id] = event
    entries = list(last.values())
    return {"feed_xact_ids": [e.xact_id for e in entries], "feed_positions": [e.position for e in entries],
            "feed_job_ids": [e.job_id for e in entries], "feed_user_ids": [e.user_id for e in entries],
            "feed_team_ids": [e.team_id for e in entries], "feed_statuses": [e.to_state for e in entries],
            "feed_versions": [e.version for e in entries]}


# A row as a vjm.jobs record: its values in JOB_COLUMNS order, which is the table's column order, then NULL for
# each generated column (tests/integration/test_projector_batch_sql.py checks). One record per row, not one array
# per column: the driver checks every element of an array parameter in Python, a record's fields in C.
_values = operator.itemgetter(*JOB_COLUMNS)
_GENERATED = (None,) * len(GENERATED_JOB_COLUMNS)


def _as_record(row: dict[str, Any]) -> tuple:
    return _values(row) + _GENERATED


def _day_columns(daily: Mapping[DailyKey, list[int]]) -> Columns:
    """The daily deltas as projection_batch_apply takes them (the owner columns follow from the scope there)."""
    keys, vectors = list(daily), list(daily.values())
    columns: Columns = {"day_scope": [k[0] for k in keys], "day_scope_id": [k[1] for k in keys],
                        "day": [k[2] for k in keys]}
    for i, name in enumerate(("day_completed", "day_failed", "day_cancelled", "day_ms")):
        columns[name] = [v[i] for v in vectors]
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
