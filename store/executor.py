"""What store/ runs a statement on: the one `Executor` type, and `Connection` for one session.

An `Executor` is anything asyncpg can run a statement on: a pool (each statement on a
connection it lends for that statement), a dedicated connection, or a connection borrowed
from a pool (`async with pool.acquire() as conn`, a PoolConnectionProxy). Work that needs
one session (a transaction, a cursor, COPY, a lock held across statements) takes a
`Connection`: either of the last two.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy
