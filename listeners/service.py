"""A maintenance service in River style: `start()`/`stop()` around a periodic `run_once()`."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

log = structlog.get_logger("vjm.listeners")


class PeriodicService:
    """Calls `run_once()` every `interval` seconds; a failing run is logged, never fatal."""

    name = "service"

    def __init__(self, interval: float):
        self._interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        """True while the loop task is alive."""
        return self._task is not None and not self._task.done()

    async def run_once(self) -> Any:
        """One pass of the service's work; subclasses implement it."""
        raise NotImplementedError

    async def start(self) -> None:
        """Start the loop in a background task."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name=f"vjm-{self.name}")

    async def stop(self) -> None:
        """Stop the loop and wait for the current pass to finish."""
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - logged; the next pass tries again
                log.exception("service_run_failed", service=self.name)
            try:
                async with asyncio.timeout(self._interval):
                    await self._stopping.wait()
            except TimeoutError:
                pass
