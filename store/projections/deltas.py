"""What a job's row contributes to the counters, and the deltas when rows change (pure).

A job counts in its user's scope and, in a team, in the team's and the (team, owner)
member scope (`scope_keys`); `contribution` is its vector over STATS_FIELDS. The fold
subtracts the before row's contribution and adds the after row's, per scope and per
platform; daily buckets count completions, failures and cancellations by the day they
happened. The projector's apply statement computes the same scope and platform deltas in SQL
(projection_batch_apply in sql/queries/projector_batch.sql); rebuild and verify use these, so
verify compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from typing import Any, TypeVar
from uuid import UUID

from ..models import Event
from .rows import PLATFORM_FIELDS, DailyKey, JobRow, PlatformKey, StatsKey

Row = dict[str, Any]  # a job row being folded (JobRow's fields)
K = TypeVar("K", StatsKey, PlatformKey)
STATUS_INDEX = {"queued": 1, "processing": 2, "completed": 3, "failed": 4, "cancelled": 5}


def scope_keys(user_id: str, team_id: UUID | None) -> list[StatsKey]:
    """The stats scopes a job counts in: its user and, if any, its team and its (team, owner) pair."""
    keys = [("user", user_id)]
    if team_id is not None:
        keys.append(("team", str(team_id)))
        keys.append(("member", f"{team_id}:{user_id}"))
    return keys


def contribution(row: JobRow | Row | None) -> list[int]:
    """What one job row adds to its scopes' counters (see STATS_FIELDS)."""
    vector = [0] * 8
    if row is None:
        return vector
    values = row if isinstance(row, dict) else row.__dict__
    vector[0] = 1
    vector[STATUS_INDEX[values["status"]]] = 1
    if values["processing_time"] is not None:
        vector[6] = 1
        vector[7] = round(values["processing_time"] * 1000)
    return vector


def stats_delta(before: Mapping[UUID, JobRow], after: Mapping[UUID, JobRow | None]) -> dict[StatsKey, list[int]]:
    """Counter deltas per scope for jobs whose rows changed from `before` to `after`."""
    return _deltas(before, after, 8, lambda row: scope_keys(row.user_id, row.team_id))


def platform_delta(before: Mapping[UUID, JobRow],
                   after: Mapping[UUID, JobRow | None]) -> dict[PlatformKey, list[int]]:
    """Per-platform counter deltas per scope (see PLATFORM_FIELDS) for jobs whose rows changed.

    The before row is taken out of its platform and the after row added to its own, so a
    job whose platform_target changes (update_metadata) moves from one platform to the other.
    """
    return _deltas(before, after, len(PLATFORM_FIELDS),
                   lambda row: [(scope, scope_id, row.platform_target)
                                for scope, scope_id in scope_keys(row.user_id, row.team_id)])


def _deltas(before: Mapping[UUID, JobRow], after: Mapping[UUID, JobRow | None], width: int,
            keys_of: Callable[[JobRow], Iterable[K]]) -> dict[K, list[int]]:
    """Each changed job's before row subtracted from, and its after row added to, the counters of its
    keys (the first `width` counters of its contribution); keys whose deltas are all zero left out."""
    deltas: dict[K, list[int]] = {}
    for job_id, new in after.items():
        old = before.get(job_id)
        for row, sign in ((old, -1), (new, 1)):
            if row is None:
                continue
            vector = contribution(row)[:width]
            for key in keys_of(row):
                total = deltas.setdefault(key, [0] * width)
                for i, value in enumerate(vector):
                    total[i] += sign * value
    return {k: v for k, v in deltas.items() if any(v)}


def count_daily(daily: dict[DailyKey, list[int]], row: Row | None, event: Event) -> None:
    column = _DAILY_COLUMN.get(event.type)
    if column is None or row is None or (event.type in _FAILS_ONLY_WHEN_FINAL and event.to_state != "failed"):
        return
    millis = round(row["processing_time"] * 1000) if row["processing_time"] is not None else 0
    day = event.occurred_at.astimezone(UTC).date()
    for scope, scope_id in scope_keys(row["user_id"], row["team_id"]):
        bucket = daily.setdefault((scope, scope_id, day), [0, 0, 0, 0])
        bucket[column] += 1
        bucket[3] += millis


_DAILY_COLUMN = {"complete": 0, "fail": 1, "time_out": 1, "requeue": 1, "cancel": 2}
DAILY_TYPES = frozenset(_DAILY_COLUMN)  # the events a daily bucket counts (the fold skips count_daily for others)
# Count as a failure only when they fail the job for good (no attempts left), not when they re-queue it.
_FAILS_ONLY_WHEN_FINAL = frozenset({"time_out", "requeue"})
