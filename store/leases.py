"""Leases on running jobs (sql/schema/065_workers.sql): renewed in place by workers, expired by the stuck detector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from .errors import translate_error
from .executor import Executor
from .queries import fetch_all, fetch_value


@dataclass(frozen=True, slots=True)
class LeaseRenewal:
    """One lease to renew: the job, the attempt that holds it, and its length from now on (seconds)."""

    job_id: UUID
    attempt: int
    seconds: float


@dataclass(frozen=True, slots=True)
class ExpiredLease:
    """A lease that ran out: the job, its attempt, and where the time_out took it (None: the lease was stale)."""

    job_id: UUID
    attempt: int
    to_state: str | None


async def renew_leases(executor: Executor, worker_id: str, leases: Sequence[LeaseRenewal]) -> dict[UUID, datetime]:
    """Renew the leases; the jobs whose lease is still `worker_id`'s, with their deadline (never closer than before:
    a renewal with a shorter length than the last keeps the later deadline).

    A job missing from the answer is no longer its attempt's: timed out, cancelled, deleted, re-run.
    """
    if not leases:
        return {}
    try:
        rows = await fetch_all(executor, "lease_renew_many", worker_id=worker_id,
                               job_ids=[lease.job_id for lease in leases], attempts=[lease.attempt for lease in leases],
                               seconds=[float(lease.seconds) for lease in leases])
    except Exception as exc:
        raise translate_error(exc) from exc
    return {row["job_id"]: row["expires_at"] for row in rows}


async def expire_leases(executor: Executor, limit: int, actor: str) -> list[ExpiredLease]:
    """Time out up to `limit` jobs whose lease ran out (one transaction: a late renewal finds the job lost)."""
    try:
        rows = await fetch_all(executor, "lease_expire_many", limit=limit, actor=actor)
    except Exception as exc:
        raise translate_error(exc) from exc
    return [ExpiredLease(row["job_id"], row["attempt"], row["to_state"]) for row in rows]


async def next_claimable_in(executor: Executor, platforms: Sequence[str] | None) -> float | None:
    """Seconds until the earliest queued job of `platforms` (None: any) that a requeue holds back may be claimed;
    None when no queued job is held back (vjm.next_claimable_in)."""
    try:
        return await fetch_value(executor, "next_claimable_in",
                                 platforms=None if platforms is None else list(platforms))
    except Exception as exc:
        raise translate_error(exc) from exc


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """The run queue for one platform and priority: jobs queued, claimable now, and the oldest claimable's wait."""

    platform_target: str
    priority: int
    queued: int
    claimable: int
    oldest_claimable_seconds: float


async def queue_depth(executor: Executor) -> list[QueueDepth]:
    """The run queue by platform and priority (vjm.run_queue: admins and the projector's role read it)."""
    return [QueueDepth(**dict(row)) for row in await fetch_all(executor, "queue_depth")]
