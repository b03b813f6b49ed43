"""The change feed the projector writes (subscriptions, the feed hub), and the jobs the stuck detector resets."""

from __future__ import annotations

from collections.abc import Sequence

from ..executor import Connection, Executor
from ..queries import execute, fetch_all, fetch_value
from .rows import JobChange, StuckJob


async def fetch_changes(executor: Executor, after_seq: int, limit: int) -> list[JobChange]:
    """Change-feed entries after `after_seq`, in order."""
    rows = await fetch_all(executor, "job_change_get_after", after_seq=after_seq, limit=limit)
    return [JobChange.model_validate(dict(r.items())) for r in rows]


async def fetch_last_change_seq(executor: Executor) -> int:
    """The newest change-feed sequence number (0 when the feed is empty)."""
    return int(await fetch_value(executor, "job_change_get_last"))


async def fetch_change_visibility(conn: Connection, seqs: Sequence[int]) -> set[int]:
    """The seqs RLS lets the caller read (vjm.job_changes_visible); call acting as the end user (acting_as)."""
    rows = await fetch_all(conn, "job_change_visible_many", seqs=list(seqs))
    return {r["seq"] for r in rows}


async def prune_changes(executor: Executor, older_than_seconds: float) -> int:
    """Delete change-feed entries older than the given age; returns how many."""
    status = await execute(executor, "job_change_prune", older_than_seconds=float(older_than_seconds))
    return int(status.split()[-1])


async def find_stuck_jobs(executor: Executor, timeout_seconds: float, limit: int) -> list[StuckJob]:
    """Processing jobs with no activity for longer than `timeout_seconds`, oldest first."""
    rows = await fetch_all(executor, "job_get_stuck", timeout_seconds=float(timeout_seconds), limit=limit)
    return [StuckJob.model_validate(dict(r.items())) for r in rows]
