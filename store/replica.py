"""How far a streaming standby has got, in the two measures read-your-writes needs (listeners/replica_reads.py).

The WAL it has replayed (`pg_last_wal_replay_lsn()`), compared with the primary's WAL position
read after a write returned: `pg_current_wal_flush_lsn()` when the writing sessions commit
synchronously (a commit returns once its record is flushed, so the flush position is at or past
it), else `pg_current_wal_insert_lsn()` (at or past every record inserted, flushed or not); and
the projector's checkpoint as the standby has replayed it (the projector writes the checkpoint,
the read models and the change feed in one transaction, so a replayed checkpoint means replayed
rows). Positions are bytes from 0/0.
"""

from __future__ import annotations

from dataclasses import dataclass

from .executor import Executor
from .queries import fetch_one, fetch_value


@dataclass(frozen=True, slots=True)
class ReplicaPosition:
    """Where a server is: WAL replayed (a primary: flushed), its projection checkpoint, whether it is a standby."""

    replayed: int
    cursor: tuple[int, int]
    in_recovery: bool


async def primary_wal_position(executor: Executor, *, flushed: bool) -> int:
    """The primary's WAL position (bytes) at or past the commit of every transaction that has returned: its flush
    position when commits are synchronous (`flushed`), else its insert position."""
    return int(await fetch_value(executor, "replica_primary_wal", flushed=flushed))


async def commits_flushed(executor: Executor) -> bool:
    """Whether the sessions of `executor` return from a commit only once it is flushed (synchronous_commit not off)."""
    return bool(await fetch_value(executor, "replica_commits_flushed"))


async def replica_position(executor: Executor, name: str = "main") -> ReplicaPosition:
    """The standby's replayed WAL and the checkpoint of projector `name` as replayed ((0, 0): none yet)."""
    row = await fetch_one(executor, "replica_position", name=name)
    cursor = (int(row["xact_id"]), int(row["position"])) if row["xact_id"] is not None else (0, 0)
    return ReplicaPosition(replayed=int(row["replayed"]), cursor=cursor, in_recovery=bool(row["in_recovery"]))
