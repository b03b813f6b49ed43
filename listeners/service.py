"""One shape for everything that runs in the background (the projector, the feed hub, the stuck
detector, and the workers and deliverers to come), in the manner of River's services:

- `start()` runs the loop in a task, `stop()` ends it and waits, `running` says whether it lives;
- `run_once()` does one pass of the work and returns what it did;
- the loop is `before_pass()` (arm wake-ups, so none is missed during the pass), `run_once()`,
  then `idle(result)` (how long to wait, and on what), over and over;
  a pass that raises is logged with the same keys everywhere and retried after `backoff()`;
- `signals` lets a caller (a test, a health probe) await what the service did instead of
  polling for its effects: `await service.signals.ran.next(lambda result: ...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog

from .listening import CONNECTION_ERRORS

log = structlog.get_logger("vjm.service")

R = TypeVar("R")
T = TypeVar("T")

BACKOFF_BASE = 0.05  # seconds after the first failure; doubled per failure up to the ceiling


def backoff(failures: int, ceiling: float, base: float = BACKOFF_BASE) -> float:
    """Seconds to wait after `failures` failures in a row: doubling from `base`, at most `ceiling`."""
    return min(ceiling, base * 2 ** min(max(failures - 1, 0), 16))


class Signal(Generic[T]):
    """Something a service did, which callers can await: each `emit(value)` wakes matching waiters."""

    def __init__(self) -> None:
        self.count = 0
        self.last: T | None = None
        self._waiters: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []

    def emit(self, value: T) -> None:
        self.count += 1
        self.last = value
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(value):
                future.set_result(value)

    async def next(self, predicate: Callable[[T], bool] = lambda _: True, timeout: float = 10.0) -> T:  # noqa: ASYNC109
        """The next emitted value that satisfies `predicate` (TimeoutError after `timeout` seconds)."""
        waiter = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter[1]
        finally:
            self._waiters.remove(waiter)


class ServiceSignals(Generic[R]):
    """What every background service emits: each pass's result, each failure, and its stop."""

    def __init__(self) -> None:
        self.ran: Signal[R] = Signal()
        self.failed: Signal[BaseException] = Signal()
        self.stopped: Signal[None] = Signal()


class BackgroundService(Generic[R]):
    """The start/stop base: subclasses implement `run_once()` and, unless a fixed interval suits
    them, `idle(result)`; `release()` frees what they hold once the loop has ended."""

    name = "service"
    cancel_on_stop = False  # True: stop() cancels a pass in flight instead of letting it finish
    stop_grace: float | None = None  # seconds stop() lets a pass in flight finish before cancelling it (None: no bound)

    def __init__(self, *, interval: float = 1.0, max_backoff: float = 5.0) -> None:
        self.interval = interval
        self.max_backoff = max_backoff
        self.failures = 0  # failed passes in a row
        self.signals: ServiceSignals[R] = ServiceSignals()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while the loop task is alive."""
        return self._task is not None and not self._task.done()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run_once(self) -> R:
        """One pass of the service's work; returns what it did."""
        raise NotImplementedError

    async def idle(self, result: R) -> None:
        """Wait before the next pass: `interval` seconds, or less if stopped."""
        await self.pause(self.interval)

    def before_pass(self) -> None:
        """Called before each pass in the loop (nothing by default)."""

    async def release(self) -> None:
        """Free connections and the like after the loop ended (nothing by default)."""

    def wake(self) -> None:
        """Cut the current wait short (stop() calls it; subclasses wake their own waits too)."""

    async def start(self) -> None:
        """Run the loop in a background task until `stop()`."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name=f"vjm-{self.name}")
            log.info("service_started", service=self.name)

    async def stop(self) -> None:
        """End the loop (the current pass finishes, unless `cancel_on_stop`, or within `stop_grace` seconds),
        then `release()`."""
        self._stopping.set()
        self.wake()
        if self._task is not None:
            task, self._task = self._task, None
            cancel = self.cancel_on_stop
            if not cancel and self.stop_grace is not None:
                finished, _ = await asyncio.wait({task}, timeout=self.stop_grace)
                if not finished:
                    log.warning("service_stop_cancelled_pass", service=self.name, grace=self.stop_grace)
                    cancel = True
            if cancel:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.release()
        self.signals.stopped.emit(None)

    async def __aenter__(self) -> BackgroundService[R]:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning at once when the service is stopped."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.before_pass()
                result = await self.run_once()
                self.failures = 0
                self.signals.ran.emit(result)
                if not self._stopping.is_set():
                    await self.idle(result)
            except Exception as exc:  # noqa: BLE001 - logged; the loop never dies of one bad pass
                self.failures += 1
                self._log_failure(exc)
                self.signals.failed.emit(exc)
                await self.after_failure(exc)
                await self.pause(backoff(self.failures, self.max_backoff))
        log.info("service_stopped", service=self.name)

    async def after_failure(self, exc: Exception) -> None:
        """Forget state the failure may have invalidated (e.g. leadership on a lost connection)."""

    def _log_failure(self, exc: Exception) -> None:
        fields: dict[str, Any] = {"service": self.name, "failures": self.failures, "error": repr(exc)[:500]}
        if isinstance(exc, CONNECTION_ERRORS):
            log.warning("service_connection_lost", **fields)
        else:
            log.error("service_run_failed", exc_info=exc, **fields)
