"""A start line for races between creates: hold a team's row so that every create in that team waits at it.

vjm.guard_append takes the row of each team a create names FOR KEY SHARE before it does anything else
of the create (sql/schema/060_write_api.sql). A session that holds the row FOR UPDATE keeps them all
waiting there; the test waits until the database reports that many sessions blocked behind it (a
signal, not a guess), then lets them all go at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

import asyncpg

from tests.support.waiting import eventually

BLOCKED_BEHIND = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))"


@contextlib.asynccontextmanager
async def start_line(pool: asyncpg.Pool, team_id: UUID) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
    """Hold team `team_id` (an owner pool: RLS does not hide the row); yields `until_waiting(n)`. Leaving the block
    releases every waiting create at once."""
    async with pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        try:
            assert await holder.fetchval("SELECT 1 FROM vjm.teams WHERE team_id = $1 FOR UPDATE", team_id) == 1
            pid = holder.get_server_pid()

            async def until_waiting(count: int) -> None:
                await eventually(lambda: _blocked(pool, pid, count), what=f"{count} sessions waiting at the line")

            yield until_waiting
        finally:
            await transaction.rollback()


async def _blocked(pool: asyncpg.Pool, pid: int, count: int) -> bool:
    return await pool.fetchval(BLOCKED_BEHIND, pid) >= count
