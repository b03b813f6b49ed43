"""The claim loop: takes queued jobs into the worker's free slots."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from listeners.service import BackgroundService

from ..models import Attempt
from .config import WorkerConfig
from .transport import WorkerTransport


class ClaimLoop(BackgroundService[int]):
    """Each pass claims up to the free slots (manager.claim_jobs), platform by platform, and hands each
    attempt to `start`; it returns how many it claimed. Between passes it waits for a slot to free up
    (when full) or the poll interval (when the queue gave nothing), and `wake()` cuts either short."""

    name = "worker_claims"

    def __init__(self, manager: WorkerTransport, config: WorkerConfig, free_slots: Callable[[], int],
                 start: Callable[[Attempt], None]) -> None:
        super().__init__(interval=config.poll_interval, max_backoff=max(config.poll_interval, 5.0))
        self._manager, self._config = manager, config
        self._free_slots, self._start = free_slots, start
        self._bell = asyncio.Event()
        self._next_platform = 0

    async def run_once(self) -> int:
        claimed = 0
        platforms = self._platforms()
        for _ in platforms:
            free = self._free_slots()
            if free <= 0:
                break
            platform = platforms[self._next_platform % len(platforms)]
            self._next_platform += 1
            claimed_now = await self._manager.claim_jobs(self._config.worker_id, free, platform,
                                                         lease_seconds=self._config.lease_seconds)
            for attempt in claimed_now:
                self._start(attempt)
                claimed += 1
        return claimed

    def _platforms(self) -> list[str | None]:
        return [p.value for p in self._config.platforms] if self._config.platforms else [None]

    async def idle(self, result: int) -> None:
        """Claim again at once when this pass filled slots and some are still free; else wait for a wake-up."""
        if result > 0 and self._free_slots() > 0:
            return
        try:
            async with asyncio.timeout(self._config.poll_interval):
                await self._bell.wait()
        except TimeoutError:
            pass

    def before_pass(self) -> None:
        """Arm the wake-up before the pass, so that a slot freed during it is not missed."""
        self._bell.clear()

    def wake(self) -> None:
        """A slot freed up, a job may be waiting, or the loop stops: claim (or stop) now."""
        self._bell.set()
