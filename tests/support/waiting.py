"""Waiting for a condition with a deadline: poll, never a guessed sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

POLL_SECONDS = 0.01
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 20,
                     what: str | Callable[[], str] = "") -> None:
    """Poll `check` (sync or async) until it is true; TimeoutError naming `what` after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = check()
                if await result if inspect.isawaitable(result) else result:
                    return
                await asyncio.sleep(POLL_SECONDS)  # poll: bounded by the deadline above
    except TimeoutError:
        raise TimeoutError(f"not within {within} s: {what() if callable(what) else what or check}") from None


async def wait_until(predicate: Callable[[], object], *, deadline_s: float = 10.0, what: str = "condition") -> None:
    """As `eventually`, for a plain predicate; AssertionError naming `what` after `deadline_s` seconds."""
    try:
        await eventually(lambda: bool(predicate()), deadline_s, what)
    except TimeoutError as exc:
        raise AssertionError(f"timed out waiting for {what}") from exc


def poll_blocking(check: Callable[[], T], within: float, what: str, every: float = 0.05) -> T:
    """For code with no event loop: call `check` until it returns something truthy and return that;
    AssertionError naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        time.sleep(every)  # poll: bounded by the deadline above
