"""Suites run again through a real PgBouncer in transaction mode (bench.pgbouncer).

The fixtures the re-run tests ask for by name (`manager`, `manager_with_listeners`, the security
suite's `user_pool`, `processor_pool` and `tenants`, the HTTP suite's `app` and `client`, a
`spawn_worker` of `vjm worker` processes) are made here on the pooler: every request and write goes
through it, with VJM_DATABASE_POOLER=transaction, and only the listeners, the change feed and
migrations use the direct URL (`database_url`). 50 clients (two pools of 25) share the pooler's 5
server connections to the test's database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from bench.pgbouncer import PgBouncer, pgbouncer_binary, running_pgbouncer
from store.identity import create_role_pool
from tests.http.conftest import (  # noqa: F401 (fixtures: re-made here on the pooled manager)
    _asgi_client,
    app,
    app_with_listeners,
    client,
    client_with_listeners,
    live_server_with_listeners,
)
from tests.support.tenants import Tenants, build_tenants
from tests.support.workers import Spawn, worker_spawner
from videojobs import Settings, connect

CLIENTS_PER_POOL = 25  # two pools per manager: 50 clients over the pooler's 5 server connections


@pytest.fixture(scope="session")
def pgbouncer(pg_server) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the session's server."""
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (.ci/run installs Debian's pgbouncer)")
    with running_pgbouncer(pg_server.url) as bouncer:
        yield bouncer


@pytest.fixture
def pooled_url(database_url: str, pgbouncer: PgBouncer) -> str:
    """This test's database through the pooler."""
    return pgbouncer.url_for(database_url)


@pytest.fixture
def pooled_env(database_url: str) -> dict[str, str]:
    """What a vjm process needs besides VJM_DATABASE_URL (the pooled URL) to run behind the pooler."""
    return {"VJM_DIRECT_DATABASE_URL": database_url, "VJM_DATABASE_POOLER": "transaction"}


def pooled_settings(pooled_url: str, database_url: str) -> Settings:
    return Settings(database_url=pooled_url, direct_database_url=database_url, database_pooler="transaction",
                    pool_size=CLIENTS_PER_POOL, user_pool_size=CLIENTS_PER_POOL)


@pytest.fixture
async def manager(pooled_url: str, database_url: str):
    """A VideoJobManager whose pools go through PgBouncer; no background service."""
    async with connect(settings=pooled_settings(pooled_url, database_url), listeners=False) as m:
        yield m


@pytest.fixture
async def manager_with_listeners(pooled_url: str, database_url: str):
    """The same with the projector and the stuck detector running (on the direct URL)."""
    async with connect(settings=pooled_settings(pooled_url, database_url), listeners=True) as m:
        yield m


@pytest.fixture
async def user_pool(pooled_url: str) -> AsyncIterator[asyncpg.Pool]:
    """vjm_app through the pooler: nothing works outside acting_as()."""
    pool = await create_role_pool(pooled_url, role=None, min_size=1, max_size=4, pooler="transaction")
    yield pool
    await pool.close()


@pytest.fixture
async def processor_pool(pooled_url: str) -> AsyncIterator[asyncpg.Pool]:
    """vjm_worker acting as vjm_processor through the pooler."""
    pool = await create_role_pool(pooled_url, role="vjm_processor", min_size=1, max_size=4, pooler="transaction")
    yield pool
    await pool.close()


@pytest.fixture
async def tenants(user_pool: asyncpg.Pool, processor_pool: asyncpg.Pool, database_url: str) -> Tenants:
    """Three users in two teams with six projected jobs, written through the pooler."""
    return await build_tenants(user_pool, processor_pool, database_url)


@pytest.fixture
async def spawn_worker(pooled_url: str, pooled_env: dict[str, str]) -> AsyncIterator[Spawn]:
    """`vjm worker` processes whose requests go through the pooler (their wake-ups: the direct URL)."""
    async with worker_spawner(pooled_url, env=pooled_env) as spawn:
        yield spawn
