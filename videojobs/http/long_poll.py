"""The two calls a worker may ask the server to hold: a claim until a job is claimable, a heartbeat until
one of its jobs is lost. Each answers at once when it can, waits on a WorkerWaits ticket (woken by the
change feed, never a busy loop), checks again every `recheck` seconds on its own, and gives up when
its `wait` is over, the app stops, or the client went away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from videojobs import Attempt, VideoJobManager

from .schemas import ClaimRequest
from .worker_schemas import HeartbeatRequest, HeartbeatResponse, HeldLease
from .worker_waits import WorkerWaits

ABANDONED = "the claiming request was abandoned"  # the release reason of a job claimed for a client that left


@dataclass(frozen=True, slots=True)
class Hold:
    """How long one call may be held, and what it waits on."""

    waits: WorkerWaits
    seconds: float  # the caller's `wait`, under the server's cap
    recheck: float
    disconnected: Callable[[], Awaitable[bool]]

    def deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.seconds

    async def until(self, ticket: asyncio.Event, deadline: float) -> bool:
        """Wait for the ticket, at most `recheck` seconds and not past `deadline`; True if it was set."""
        timeout = min(self.recheck, deadline - asyncio.get_running_loop().time())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                await ticket.wait()
        return ticket.is_set()

    async def over(self, deadline: float) -> bool:
        """True when the call should answer now: its time is up, the app stops, or its client left."""
        return (asyncio.get_running_loop().time() >= deadline or self.waits.closed
                or await self.disconnected())


async def claim_held(manager: VideoJobManager, claim: ClaimRequest, hold: Hold) -> list[Attempt]:
    """Claim now (one claim for all the platforms asked); while nothing is claimable, wait for a job to be queued
    (of any platform: the feed does not say which) and claim again, until `hold` is over.

    A job claimed just as the client left would hold a lease nobody renews: it is released at once
    (queued again, its attempt given back) instead of waiting for the lease to run out."""
    deadline = hold.deadline()
    platforms = claim.platform_choice()
    while True:
        # Queue up before the claim, so that a job queued during it wakes this call; a call that may not
        # wait takes no place (it would take a wake-up from one that waits).
        ticket = hold.waits.claim_ticket() if hold.seconds > 0 else None
        try:
            attempts = await manager.claim_jobs(claim.worker_id, claim.limit, platforms,
                                                lease_seconds=claim.lease_seconds)
            if attempts:
                return await _unless_abandoned(manager, attempts, hold)
            if ticket is None or await hold.over(deadline):
                return []
            await hold.until(ticket, deadline)
            if await hold.disconnected():  # woken for a client that left: claim nothing for it
                return []
        finally:
            if ticket is not None:
                hold.waits.drop_claim(ticket)


async def _unless_abandoned(manager: VideoJobManager, attempts: list[Attempt], hold: Hold) -> list[Attempt]:
    if hold.seconds <= 0 or not await hold.disconnected():
        return attempts
    for attempt in attempts:
        await manager.processors.release_job(attempt.job_id, attempt.attempt, reason=ABANDONED)
    return []


async def heartbeat_held(manager: VideoJobManager, beat: HeartbeatRequest, hold: Hold) -> HeartbeatResponse:
    """Renew the leases; if none is lost, wait until the change feed says one of the jobs left `processing`
    and renew again (the renewal decides, not the notice), until `hold` is over."""
    leases = [(lease.job_id, lease.attempt, lease.seconds) for lease in beat.leases]
    asked = {lease.job_id for lease in beat.leases}
    ticket = hold.waits.watch(asked) if hold.seconds > 0 and asked else None
    try:
        held = await manager.processors.renew_leases(beat.worker_id, leases)
        deadline = hold.deadline()
        while ticket is not None and asked <= held.keys() and not await hold.over(deadline):
            if await hold.until(ticket, deadline) and not await hold.disconnected():
                ticket.clear()  # a client that left may hold newer lengths: renew only for one still here
                held = await manager.processors.renew_leases(beat.worker_id, leases)
    finally:
        if ticket is not None:
            hold.waits.unwatch(asked, ticket)
    return _answer(asked, held)


def _answer(asked: set[UUID], held: dict) -> HeartbeatResponse:
    return HeartbeatResponse(held=[HeldLease(job_id=job_id, expires_at=expires) for job_id, expires in held.items()],
                             lost=sorted(asked - held.keys()))
