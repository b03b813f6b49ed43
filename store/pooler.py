"""Connections through a transaction pooler (PgBouncer `pool_mode = transaction`, Supavisor on 6543).

A transaction pooler hands each transaction to whichever server connection is free, so
nothing a client leaves in its session survives to its next transaction:

- no server-side prepared statements: asyncpg's statement cache is off (`statement_cache_size=0`),
  so each statement is parsed in the transaction that runs it;
- no session role: a role pool that must act as a role other than its login's default sets it
  per transaction. `RolePerTransaction` sends `BEGIN; SET LOCAL ROLE r` before a statement
  that runs outside a transaction and `COMMIT` after it, and `SET LOCAL ROLE r` after the BEGIN
  of every transaction block (`conn.transaction()`). A login whose default role already is the
  one wanted (`ALTER ROLE vjm_worker SET role = vjm_processor`, sql/schema/010_roles.sql) needs
  none of that: its statements run as they are, one round trip each;
- no LISTEN, no session advisory locks: the listeners and migrations use the direct URL
  (VJM_DIRECT_DATABASE_URL), never the pooler.

End users need nothing new: `acting_as` already sets the role and the token with
`set_config(..., is_local => true)` inside its transaction, and `vjm_entry.append_event` in the
statement itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from asyncpg.transaction import Transaction

TRANSACTION = "transaction"
POOLERS = (None, TRANSACTION)


def check_pooler(pooler: str | None) -> str | None:
    """None (a direct connection or a session pooler) or 'transaction'; ValueError otherwise."""
    if pooler not in POOLERS:
        raise ValueError(f"pooler must be one of {POOLERS}, got {pooler!r}")
    return pooler


def pooled_kwargs(pooler: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """asyncpg connect/create_pool keyword arguments for `pooler` (the statement cache off behind a
    transaction pooler, which would hand a cached statement's next use to another server connection)."""
    if check_pooler(pooler) == TRANSACTION:
        return {**kwargs, "statement_cache_size": 0}
    return kwargs


def takes_role_per_transaction(conn: object) -> bool:
    """Whether `conn` is a RolePerTransaction (asyncpg's isinstance() says yes for every connection)."""
    return RolePerTransaction in type(conn).__mro__


class _RoleTransaction(Transaction):
    """A transaction block that takes its connection's role right after BEGIN."""

    async def start(self) -> None:
        conn = self._connection  # type: ignore[attr-defined]  # asyncpg's own attribute, not in its stubs
        outermost = conn._top_xact is None
        await super().start()
        role = getattr(conn, "vjm_role", None)
        if outermost and role is not None:
            await conn.execute(f"SET LOCAL ROLE {role}")


class RolePerTransaction(asyncpg.Connection):
    """An asyncpg connection that acts as `vjm_role` in every transaction and nowhere else.

    `vjm_role` is set once the connection is initialised (store.identity), to a name from
    store.identity.RUNTIME_ROLES only (never caller input). None: statements run as they are.
    Each statement outside a transaction block costs two round trips more (BEGIN and SET LOCAL
    ROLE in one, COMMIT); inside a block, one more per block.
    """

    vjm_role: str | None = None

    def transaction(self, *, isolation: Any = None, readonly: bool = False,
                    deferrable: bool = False) -> Transaction:
        return _RoleTransaction(self, isolation, readonly, deferrable)

    def _needs_role(self) -> bool:
        outside = self._top_xact is None and not self.is_in_transaction()  # type: ignore[attr-defined]
        return self.vjm_role is not None and outside

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        if args or not self._needs_role():
            return await super().execute(query, *args, timeout=timeout)
        # A simple query of several statements is one implicit transaction: SET LOCAL lasts for it.
        return await super().execute(f"SET LOCAL ROLE {self.vjm_role}; {query}", timeout=timeout)

    async def _execute(self, query: Any, args: Any, limit: Any, timeout: Any, **kwargs: Any) -> Any:  # noqa: ASYNC109
        if not self._needs_role():
            return await super()._execute(  # type: ignore[misc]
                query, args, limit, timeout, **kwargs)
        async with self._in_role():
            return await super()._execute(  # type: ignore[misc]
                query, args, limit, timeout, **kwargs)

    async def _executemany(self, query: Any, args: Any, timeout: Any, *rest: Any, **kwargs: Any) -> Any:  # noqa: ASYNC109
        if not self._needs_role():
            return await super()._executemany(  # type: ignore[misc]
                query, args, timeout, *rest, **kwargs)
        async with self._in_role():
            return await super()._executemany(  # type: ignore[misc]
                query, args, timeout, *rest, **kwargs)

    @contextlib.asynccontextmanager
    async def _in_role(self) -> AsyncIterator[None]:
        await super().execute(f"BEGIN; SET LOCAL ROLE {self.vjm_role}")
        try:
            yield
        except BaseException:
            if not self.is_closed():
                with contextlib.suppress(Exception):
                    await super().execute("ROLLBACK")
            raise
        await super().execute("COMMIT")
