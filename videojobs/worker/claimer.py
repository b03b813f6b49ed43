"""The claim loop: takes queued jobs into the worker's free slots, and sleeps until one may be claimable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from listeners.service import BackgroundService

from ..models import Attempt
from .config import WorkerConfig
from .transport import HeldBackLookup, WorkerTransport

HELD_BACK_MARGIN = 0.001  # seconds past a not_before, so that the claim's now() is surely past it too


class ClaimLoop(BackgroundService[int]):
    """Each pass claims up to the free slots (manager.claim_jobs, one claim for all the worker's platforms:
    the oldest jobs across them), and hands each attempt to `start`; it returns how many it claimed.

    Between passes it sleeps until a job may be claimable, and never on a notice alone:
    - when full, until a slot frees up (`wake()` from the runtime);
    - when the queue gave nothing, until `wake()` (the change feed says a job was queued: created,
      retried, released, timed out), or until the earliest queued job that a requeue holds back
      reaches its not_before (asked of the database after such a pass), or at most `poll_interval`
      (the safety net for a lost notice or a projector that is not running).
    """

    name = "worker_claims"

    def __init__(self, manager: WorkerTransport, config: WorkerConfig, free_slots: Callable[[], int],
                 start: Callable[[Attempt], None]) -> None:
        super().__init__(interval=config.poll_interval, max_backoff=max(config.poll_interval, 5.0))
        self._manager, self._config = manager, config
        self._free_slots, self._start = free_slots, start
        self._bell = asyncio.Event()
        self._platforms = [p.value for p in config.platforms] if config.platforms else None  # None: every one
        self._sleep = config.poll_interval  # how long the next idle() may sleep without a wake-up

    async def run_once(self) -> int:
        claimed = 0
        free = self._free_slots()
        if free > 0:
            for attempt in await self._manager.claim_jobs(self._config.worker_id, free, self._platforms,
                                                          lease_seconds=self._config.lease_seconds):
                self._start(attempt)
                claimed += 1
        self._sleep = await self._held_back_for() if claimed == 0 and self._free_slots() > 0 \
            else self._config.poll_interval
        return claimed

    async def _held_back_for(self) -> float:
        """The poll interval, or less when a held-back job of this worker's platforms may be claimed sooner."""
        lookup = self._manager.processors
        if not isinstance(lookup, HeldBackLookup):  # the HTTP transport: the server's held claim wakes it
            return self._config.poll_interval
        held_back = await lookup.next_claimable_in(self._platforms)
        if held_back is None:
            return self._config.poll_interval
        return min(self._config.poll_interval, held_back + HELD_BACK_MARGIN)

    async def idle(self, result: int) -> None:
        """Claim again at once when this pass filled slots and some are still free; else wait for a wake-up,
        a held-back job's not_before, or the poll interval, whichever comes first."""
        if result > 0 and self._free_slots() > 0:
            return
        try:
            async with asyncio.timeout(self._sleep):
                await self._bell.wait()
        except TimeoutError:
            pass

    def before_pass(self) -> None:
        """Arm the wake-up before the pass, so that a slot freed during it is not missed."""
        self._bell.clear()

    def wake(self) -> None:
        """A slot freed up, a job may be waiting, or the loop stops: claim (or stop) now."""
        self._bell.set()
