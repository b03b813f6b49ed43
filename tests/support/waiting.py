"""Waiting for a condition with a deadline: poll, never a guessed sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

POLL_SECONDS = 0.01


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
