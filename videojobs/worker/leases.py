"""The lease keeper: renews the leases of the jobs a worker runs, and learns which ones it lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from listeners.service import BackgroundService

from ..models import Attempt
from .config import WorkerConfig
from .transport import WorkerTransport

RENEW_FRACTION = 1 / 3  # a lease is renewed when a third of it has passed


@dataclass(slots=True)
class Held:
    """A lease the worker holds: its job's attempt, its length, and when to renew it next (monotonic)."""

    attempt: int
    seconds: float
    due: float


class LeaseKeeper(BackgroundService[set[UUID]]):
    """Each pass renews the leases that are due (one call for all of them: vjm.renew_leases) and hands
    the jobs the answer leaves out to `on_lost`; it returns those. `check_now()` renews every lease at
    once (something may have happened to a job: the change feed said so)."""

    name = "worker_leases"

    def __init__(self, manager: WorkerTransport, config: WorkerConfig,
                 on_lost: Callable[[set[UUID]], None]) -> None:
        super().__init__(interval=config.lease_seconds * RENEW_FRACTION, max_backoff=1.0)
        self._manager, self._worker_id, self._on_lost = manager, config.worker_id, on_lost
        self._held: dict[UUID, Held] = {}
        self._bell = asyncio.Event()
        self._on_change: list[Callable[[], None]] = []
        # One renewal at a time: a periodic renewal still in flight with a job's old length must not
        # commit after ctx.extend()'s renewal and undo it (vjm.renew_leases keeps the later deadline in
        # any case; the HTTP watcher's held heartbeat is the renewal this lock cannot order).
        self._renewing = asyncio.Lock()

    def hold(self, attempt: Attempt, seconds: float, *, renew_now: bool = False) -> None:
        """Keep the lease the claim took on this attempt, `seconds` long from its next renewal (at once with
        `renew_now`: a job whose lease differs from the claim's)."""
        due = 0.0 if renew_now else time.monotonic() + seconds * RENEW_FRACTION
        self._held[attempt.job_id] = Held(attempt.attempt, seconds, due)
        self._bell.set()
        self._changed()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a lease is added or given a new length (after its renewal): a watcher
        that names the held leases (http_watch.py) names the new one, or the new length, from then on."""
        self._on_change.append(callback)

    def _changed(self) -> None:
        for callback in self._on_change:
            callback()

    def held_leases(self) -> list[tuple[UUID, int, float]]:
        """The leases held now, each `(job_id, attempt, seconds)`, as a renewal names them."""
        return [(job_id, held.attempt, held.seconds) for job_id, held in self._held.items()]

    def drop(self, job_id: UUID) -> None:
        """Stop renewing: the job's attempt ended (its lease runs out unused, or its report ended it)."""
        self._held.pop(job_id, None)

    def check_now(self) -> None:
        """Renew every lease in the next pass, at once."""
        for held in self._held.values():
            held.due = 0.0
        self._bell.set()

    async def extend(self, job_id: UUID, seconds: float | None) -> bool:
        """Renew one lease now (with a new length, if given); False when the job is no longer ours."""
        held = self._held.get(job_id)
        if held is None:
            return False
        if seconds is not None:
            held.seconds = seconds
        kept = job_id not in await self._renew({job_id: held})
        if seconds is not None:
            self._changed()
        return kept

    async def run_once(self) -> set[UUID]:
        now = time.monotonic()
        return await self._renew({job_id: held for job_id, held in self._held.items() if held.due <= now})

    async def _renew(self, due: dict[UUID, Held]) -> set[UUID]:
        if not due:
            return set()
        async with self._renewing:
            asked = time.monotonic()
            renewed = await self._manager.processors.renew_leases(
                self._worker_id, [(job_id, held.attempt, held.seconds) for job_id, held in due.items()])
        for held in due.values():
            held.due = asked + held.seconds * RENEW_FRACTION
        lost = {job_id for job_id, held in due.items()
                if job_id not in renewed and self._held.get(job_id) is held}
        for job_id in lost:
            self.drop(job_id)
        if lost:
            self._on_lost(lost)
        return lost

    def before_pass(self) -> None:
        self._bell.clear()

    async def idle(self, result: set[UUID]) -> None:
        """Until the next lease is due, or `check_now()`, or the stop."""
        soonest = min((held.due for held in self._held.values()), default=time.monotonic() + self.interval)
        try:
            async with asyncio.timeout(max(0.0, soonest - time.monotonic())):
                await self._bell.wait()
        except TimeoutError:
            pass

    def wake(self) -> None:
        self._bell.set()
