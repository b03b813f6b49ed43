"""Test harness: one PostgreSQL per session, one migrated template, one clone per test.

Where Postgres comes from: VJM_TEST_DATABASE_URL, else Docker (testcontainers),
else an embedded pgserver in a temporary directory. Each test gets its own
database made by `CREATE DATABASE ... TEMPLATE`, so tests are isolated.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from store import EventStore, connect, create_pool, migrate, provide_postgres, with_database
from tests.support.databases import admin_execute, create_migrated_database, drop_database
from tests.support.factories import principal_of
from tests.support.tokens import TEST_JWT_SECRET

# One identity secret for the whole test session (SECURITY.md, "Identity"): the template
# database's key, the tokens that acting_as() mints for user ids, and the HTTP tests' tokens.
os.environ.setdefault("VJM_JWT_SECRET", TEST_JWT_SECRET)


def _run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def pg_server() -> Iterator:
    """A PostgreSQL server for the whole session (admin URL and its source)."""
    with provide_postgres(env_vars=("VJM_TEST_DATABASE_URL",), temporary=True) as handle:
        if handle.source == "embedded":
            # A throwaway test server: durability buys nothing, speed does.
            _run(admin_execute(handle.url, "ALTER SYSTEM SET fsync = off",
                                "ALTER SYSTEM SET synchronous_commit = off",
                                "ALTER SYSTEM SET full_page_writes = off", "SELECT pg_reload_conf()"))
        yield handle


@pytest.fixture(scope="session")
def template_database(pg_server) -> Iterator[str]:
    """A freshly migrated template database, dropped at the end of the session."""
    name = f"vjm_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _run(admin_execute(pg_server.url, f'CREATE DATABASE "{name}"'))

    async def _migrate() -> None:
        conn = await connect(with_database(pg_server.url, name))
        try:
            await migrate(conn)
            await conn.execute("SELECT vjm.set_jwt_secret($1, 'authenticated')", os.environ["VJM_JWT_SECRET"])
        finally:
            await conn.close()

    _run(_migrate())
    yield name
    _run(admin_execute(pg_server.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(pg_server, template_database) -> AsyncIterator[str]:
    """A URL to this test's own database, cloned from the migrated template."""
    url = await create_migrated_database(pg_server.url, f"vjm_test_{uuid.uuid4().hex[:12]}", template=template_database)
    yield url
    await drop_database(pg_server.url, url)


@pytest.fixture
async def empty_database_url(pg_server) -> AsyncIterator[str]:
    """A URL to a new, empty (unmigrated) database."""
    name = f"vjm_empty_{uuid.uuid4().hex[:12]}"
    await admin_execute(pg_server.url, f'CREATE DATABASE "{name}"', *principal_of(name))
    url = with_database(pg_server.url, name)
    yield url
    await drop_database(pg_server.url, url)


@pytest.fixture
async def pool(database_url) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's database, connected as the (owner) test user."""
    p = await create_pool(database_url, min_size=1, max_size=10)
    yield p
    await p.close()


@pytest.fixture
def store(pool) -> EventStore:
    """The event store over this test's pool."""
    return EventStore(pool)


@pytest.fixture(scope="session", autouse=True)
def _quiet_logs() -> None:
    """Info and above only, so failures are readable."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


@pytest.fixture
async def manager(database_url: str):
    """A VideoJobManager on this test's database that starts no background service.

    No projector and no stuck detector run: the read models change only when the test
    projects (or the manager's read-your-writes fallback reads the log). Tests that need
    the projections kept up to date use `manager_with_listeners`.
    """
    from videojobs import Settings, connect

    async with connect(settings=Settings(database_url=database_url), listeners=False) as m:
        yield m


@pytest.fixture
async def manager_with_listeners(database_url: str):
    """A VideoJobManager on this test's database with the projector and the stuck detector running in-process
    (what `videojobs.connect()` does by default); both stop when the test ends."""
    from videojobs import Settings, connect

    async with connect(settings=Settings(database_url=database_url), listeners=True) as m:
        yield m


@pytest.fixture
async def role_pools(database_url: str):
    """A vjm_admin pool and an end-user pool on this test's database (tests.support.pools)."""
    from tests.support.pools import role_pools as opened

    async with opened(database_url) as pools:
        yield pools
