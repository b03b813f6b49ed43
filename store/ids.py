"""Time-ordered UUIDs (version 7), so new jobs land at the right edge of every index."""

from __future__ import annotations

import os
import time
import uuid

from asyncpg.pgproto.pgproto import UUID as DriverUUID

_MILLIS = (1 << 48) - 1
_LOW = (1 << 62) - 1


def _uuid7(millis: int, rand: int) -> int:
    """The UUIDv7 layout: 48 bits of Unix milliseconds, version 7, then 74 of the random bits."""
    return (millis & _MILLIS) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62 | (rand & _LOW)


def new_job_id() -> uuid.UUID:
    """A UUIDv7 for one new job."""
    return uuid.UUID(int=_uuid7(time.time_ns() // 1_000_000, int.from_bytes(os.urandom(10), "big")))


def new_job_ids(count: int) -> list[uuid.UUID]:
    """`count` UUIDv7s from one clock reading and one urandom call (they share the millisecond).

    asyncpg's UUID (a uuid.UUID, built from bytes in C) costs a quarter of one uuid.UUID(int=...).
    """
    millis = time.time_ns() // 1_000_000
    raw = os.urandom(10 * count)
    return [DriverUUID(_uuid7(millis, int.from_bytes(raw[i:i + 10], "big")).to_bytes(16, "big"))
            for i in range(0, 10 * count, 10)]
