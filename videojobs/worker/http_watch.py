"""Over HTTP, what the change feed is to a database worker: how cancellation reaches a running handler.

The worker keeps one heartbeat request open (POST /api/v1/processor/heartbeat with `wait`), naming
the leases it holds. The server renews them, and answers at once if some are lost already; else it
holds the answer until the change feed says that one of those jobs left `processing` (cancelled,
deleted, timed out), renews again and answers with the jobs lost, or until `wait` passes. Lost
jobs make the lease keeper renew at once: as on the database path, its answer decides, and the
handlers of the jobs it names lost are cancelled.

A job started while a request is open is not named by it, and a lease given a new length
(ctx.extend) is named with its old one: the request is dropped and a new one names every lease as
it is now (after MIN_GAP, so that a burst of starts costs one request, not one each; and so that
its renewal, with the new length, comes well after anything the dropped one renewed).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING
from uuid import UUID

from listeners.service import BackgroundService

from .leases import LeaseKeeper

if TYPE_CHECKING:
    from .http_client import HttpTransport

MIN_GAP = 0.2  # seconds between two watch requests: a job lost in between is named by the next one's renewal


class HeartbeatWatch(BackgroundService[set[UUID]]):
    """Each pass holds one heartbeat open for the held leases; it returns the jobs the server named lost."""

    name = "worker_heartbeat_watch"
    cancel_on_stop = True  # the request in flight waits on the server: do not wait for it

    def __init__(self, transport: HttpTransport, worker_id: str, keeper: LeaseKeeper, *, wait: float) -> None:
        super().__init__(interval=wait, max_backoff=5.0)
        self._transport, self._worker_id, self._keeper, self._wait = transport, worker_id, keeper, wait
        self._leases_changed = asyncio.Event()  # a lease was added or given a new length
        self._reported: set[UUID] = set()  # lost jobs already handed to the keeper, until it drops them
        keeper.on_change(self._leases_changed.set)

    def before_pass(self) -> None:
        self._leases_changed.clear()

    async def run_once(self) -> set[UUID]:
        leases = self._watched()
        if not leases:
            return set()
        call = asyncio.ensure_future(self._transport.heartbeat(self._worker_id, leases, wait=self._wait))
        changed = asyncio.ensure_future(self._leases_changed.wait())
        try:
            await asyncio.wait({call, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if not call.done():  # a new lease, or a new length: name it in the next pass
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            return set()
        lost = {UUID(job_id) for job_id in call.result()["lost"]}
        if lost:
            self._reported |= lost
            self._keeper.check_now()
        return lost

    def _watched(self) -> list[tuple[UUID, int, float]]:
        """The held leases, less the lost ones the keeper is dropping now."""
        held = self._keeper.held_leases()
        self._reported &= {job_id for job_id, _, _ in held}
        return [lease for lease in held if lease[0] not in self._reported]

    async def idle(self, result: set[UUID]) -> None:
        """Straight on after jobs were lost (others may follow); else MIN_GAP between requests (a burst of
        starts, a server that answers early); with no lease to watch, until one is added (or `interval`)."""
        if result:
            return
        if self._watched():
            await self.pause(MIN_GAP)
            return
        waiting = asyncio.ensure_future(self._leases_changed.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({waiting, stopping}, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        stopping.cancel()

    def wake(self) -> None:
        self._leases_changed.set()
