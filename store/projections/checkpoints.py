"""A projector's place and its lease: checkpoints, leadership, the doorbell, and how far behind it is."""

from __future__ import annotations

import os
import socket
from typing import Any

from ..executor import Connection, Executor
from ..queries import execute, fetch_all, fetch_one, fetch_optional, fetch_value
from .rows import Checkpoint, LagSample


async def ensure_checkpoint(executor: Executor, name: str) -> None:
    """Create the projector's checkpoint row if missing."""
    await execute(executor, "projection_checkpoint_ensure", name=name)


async def get_checkpoint(executor: Executor, name: str) -> Checkpoint | None:
    """The checkpoint, unlocked (None if the projector never ran)."""
    row = await fetch_optional(executor, "projection_checkpoint_get", name=name)
    return Checkpoint.model_validate(dict(row.items())) if row else None


async def lock_checkpoint(conn: Connection, name: str, query: str = "projection_checkpoint_lock") -> Checkpoint:
    """The checkpoint, locked FOR UPDATE until the transaction ends (by `query`: the apply transaction's lock also
    keeps its statements' plans, store.projections.apply.lock_batch)."""
    row = await fetch_optional(conn, query, name=name)
    if row is None:
        raise LookupError(f"no projection checkpoint named {name!r}")
    return Checkpoint.model_validate(dict(row.items()))


def process_label() -> str:
    """How a projector names its process in its lease and candidacy (`vjm status`): 'host:pid'."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def try_lock_leadership(conn: Connection, name: str, ttl: float = 30.0, process: str | None = None) -> bool:
    """Take or renew the projector's lease (vjm.projector_leases) for `ttl` seconds; True while this session leads.
    The session checks in as a candidate too, naming its process (default: this one, process_label())."""
    return bool(await fetch_value(conn, "projection_leader_try_lock", name=name, ttl_seconds=float(ttl),
                                  process=process or process_label()))


async def unlock_leadership(conn: Connection, name: str) -> None:
    """Give the projector's lease up."""
    await fetch_value(conn, "projection_leader_unlock", name=name)


async def get_leadership(executor: Executor, name: str) -> dict[str, Any] | None:
    """Who holds the projector's lease: name, holder_pid, acquired_at, renewed_at, expires_at, live."""
    row = await fetch_optional(executor, "projection_leader_get", name=name)
    return dict(row.items()) if row else None


async def lift_statement_timeout(conn: Connection) -> None:
    """Inside a maintenance transaction: no statement_timeout until it ends (SET LOCAL)."""
    await fetch_value(conn, "maintenance_statement_timeout_lift")


async def arm_doorbell(conn: Connection, cursor: tuple[int, int]) -> str:
    """Before sleeping: 'armed' (appends now ring; release it on waking), 'pending', 'held' or 'busy' (vjm.arm_doorbell)."""
    return str(await fetch_value(conn, "projection_doorbell_arm", xact_id=cursor[0], position=cursor[1]))


async def discard_plans(conn: Connection) -> None:
    """Forget the plans this session keeps (the apply statement's): the next batch plans for the tables as they are."""
    await execute(conn, "projection_plans_discard")


async def release_doorbell(conn: Connection) -> None:
    """After waking from an 'armed' sleep: appends stop ringing."""
    await fetch_value(conn, "projection_doorbell_release")


async def doorbell_holders(executor: Executor) -> list[dict[str, Any]]:
    """The sessions holding or awaiting the doorbell lock (pid, mode, granted)."""
    return [dict(r.items()) for r in await fetch_all(executor, "projection_doorbell_holders")]


async def sample_lag(executor: Executor, cursor: tuple[int, int]) -> LagSample:
    """Events after `cursor`, and those held behind the horizon by an open transaction."""
    row = await fetch_one(executor, "projection_lag_get", after_xact_id=cursor[0], after_position=cursor[1])
    return LagSample(xmin=row["xmin"], events_behind=row["events"], seconds_behind=row["seconds_behind"],
                     held_events=row["held"], held_seconds=row["held_seconds"], blocking_pid=row["blocking_pid"],
                     blocking_state=row["blocking_state"], blocking_xact_seconds=row["blocking_xact_seconds"])
