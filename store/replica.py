"""How far a streaming standby has got, in the two measures read-your-writes needs (listeners/replica_reads.py).

The WAL it has replayed (`pg_last_wal_replay_lsn()`), compared with the primary's WAL position
read after a write returned (`pg_current_wal_insert_lsn()`, at or past the write's commit
record); and the projector's checkpoint as the standby has replayed it (the projector writes
the checkpoint, the read models and the change feed in one transaction, so a replayed
checkpoint means replayed rows). Positions are bytes from 0/0.
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


async def primary_wal_position(executor: Executor) -> int:
    """The primary's WAL insert position (bytes): every transaction that has returned committed at or before it."""
    return int(await fetch_value(executor, "replica_primary_wal"))


async def replica_position(executor: Executor, name: str = "main") -> ReplicaPosition:
    """The standby's replayed WAL and the checkpoint of projector `name` as replayed ((0, 0): none yet)."""
    row = await fetch_one(executor, "replica_position", name=name)
    cursor = (int(row["xact_id"]), int(row["position"])) if row["xact_id"] is not None else (0, 0)
    return ReplicaPosition(replayed=int(row["replayed"]), cursor=cursor, in_recovery=bool(row["in_recovery"]))
