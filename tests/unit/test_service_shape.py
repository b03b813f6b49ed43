"""The one shape of a background service (listeners/service.py): start and stop, a pass that returns
what it did, failures logged with the same keys and retried after a bounded backoff, and signals a
caller awaits instead of polling. No database: the work is a counter."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from listeners.feed_hub import ChangeFeedHub
from listeners.projector import Projector
from listeners.service import BackgroundService, Signal, backoff
from listeners.stuck_detector import StuckDetector


class Counting(BackgroundService[int]):
    name = "counting"

    def __init__(self, fail_on: set[int] = frozenset()) -> None:
        super().__init__(interval=0.001, max_backoff=0.01)
        self.passes = 0
        self.fail_on = fail_on

    async def run_once(self) -> int:
        self.passes += 1
        if self.passes in self.fail_on:
            raise RuntimeError(f"pass {self.passes} broke")
        return self.passes


def test_every_long_running_part_has_the_one_shape() -> None:
    for service in (Projector, ChangeFeedHub, StuckDetector):
        assert issubclass(service, BackgroundService), service


def test_backoff_doubles_from_the_base_and_stops_at_the_ceiling() -> None:
    assert [backoff(n, 1.0) for n in (1, 2, 3, 4)] == [0.05, 0.1, 0.2, 0.4]
    assert backoff(50, 1.0) == 1.0 and backoff(0, 1.0) == 0.05


async def test_signals_carry_each_pass_and_a_failure_does_not_end_the_loop() -> None:
    service = Counting(fail_on={2, 3})
    with structlog.testing.capture_logs() as logs:
        async with service:
            failure = await service.signals.failed.next()
            later = await service.signals.ran.next(lambda passes: passes >= 5)
    assert isinstance(failure, RuntimeError) and "pass 2" in str(failure)
    assert later >= 5 and service.signals.failed.count == 2 and service.failures == 0
    assert not service.running and service.signals.stopped.count == 1
    failed = [e for e in logs if e["event"] == "service_run_failed"]
    assert [(e["service"], e["failures"]) for e in failed] == [("counting", 1), ("counting", 2)]
    assert {e["event"] for e in logs} >= {"service_started", "service_stopped"}


async def test_stop_returns_at_once_from_a_long_idle() -> None:
    service = Counting()
    service.interval = 3600
    await service.start()
    await service.signals.ran.next()
    async with asyncio.timeout(2):
        await service.stop()
    assert service.passes == 1


class Stuck(Counting):
    """A pass that never ends (as a projector reconnecting to a server that is gone)."""

    stop_grace = 0.05
    began = asyncio.Event()

    async def run_once(self) -> int:
        self.passes += 1
        self.began.set()
        await asyncio.Event().wait()
        return self.passes


async def test_stop_cancels_a_pass_that_outlasts_the_grace() -> None:
    service = Stuck()
    service.began = asyncio.Event()
    await service.start()
    async with asyncio.timeout(5):
        await service.began.wait()
    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(2):
            await service.stop()
    assert not service.running and service.signals.stopped.count == 1
    assert [e["service"] for e in logs if e["event"] == "service_stop_cancelled_pass"] == ["counting"]


def test_the_projector_does_not_wait_for_ever_on_a_pass_at_stop() -> None:
    assert Projector.stop_grace is not None and Projector.stop_grace <= 10


async def test_a_signal_wait_names_its_deadline() -> None:
    with pytest.raises(TimeoutError):
        await Signal[int]().next(timeout=0.01)
