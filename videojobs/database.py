"""Where the application's database comes from: VJM_DATABASE_URL, else the embedded server.

The embedded server (pgserver, PostgreSQL 16) keeps its data in Settings.data_dir
across runs. Either way the schema is migrated before the URL is handed out.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog

from store import connect, migrate, migration_status, provide_postgres, with_database
from store.postgres import ensure_database

from .config import Settings

log = structlog.get_logger("vjm.database")
EMBEDDED_DATABASE = "vjm"


@contextlib.asynccontextmanager
async def provide_database(settings: Settings, *, temporary: bool = False,
                           migrated: bool = True) -> AsyncIterator[str]:
    """Yield a database URL (migrated unless told otherwise): the configured one, or the embedded `vjm`."""
    if settings.database_url:
        if migrated:  # never through a transaction pooler: migrations hold a session lock
            await migrate_url(settings.direct_database_url or settings.database_url)
        yield settings.database_url
        return
    with provide_postgres(env_vars=(), data_dir=settings.data_dir, temporary=temporary,
                          allow_docker=False) as handle:
        url = with_database(handle.url, EMBEDDED_DATABASE)
        await ensure_database(handle.url, EMBEDDED_DATABASE)
        if migrated:
            await migrate_url(url)
        log.info("embedded_postgres_ready", data_dir=str(handle.data_dir))
        yield url


async def migrate_url(url: str, *, attempts: int = 5, max_delay: float = 15.0) -> list[int]:
    """Apply pending migrations to the database at `url`; the versions applied now."""
    conn = await connect(url, attempts=attempts, max_delay=max_delay)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def migrations_of(url: str, *, attempts: int = 2, max_delay: float = 3.0) -> dict[str, list[int]]:
    """Which migrations the database at `url` has applied and which are pending."""
    conn = await connect(url, attempts=attempts, max_delay=max_delay)
    try:
        return await migration_status(conn)
    finally:
        await conn.close()


async def probe_database(url: str) -> None:
    """Fail fast (DatabaseUnavailable, a few seconds at most) when the server at `url` does not answer."""
    conn = await connect(url, attempts=2, max_delay=2)
    await conn.close()
