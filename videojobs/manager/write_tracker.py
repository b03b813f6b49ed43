"""What a runtime's callers wrote: the read-your-writes cursor, and when the primary was last used."""

from __future__ import annotations

import asyncio


class WriteTracker:
    """What was written through a manager and its derived managers: the newest commit-order cursor, and an
    `epoch` counted up after each use of the primary that may have written (standby reads: reads.py)."""

    def __init__(self) -> None:
        self.cursor: tuple[int, int] | None = None
        self.epoch = 0
        self.wal: tuple[int, int] | None = None  # (epoch, the primary's WAL position read after it)
        self.capturing = asyncio.Lock()

    def remember(self, cursor: tuple[int, int]) -> None:
        if self.cursor is None or cursor > self.cursor:
            self.cursor = cursor
        self.epoch += 1

    def touch(self) -> None:
        """The primary was used (maybe written): a standby read next re-reads its WAL position."""
        self.epoch += 1
