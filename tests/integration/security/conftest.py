"""Fixtures for the security tests: real non-superuser roles, three tenants, their jobs.

Users alice and bob share team T1; carol is alone in T2 (tests.support.tenants). No fixture
here starts a background service: the tenants' jobs are projected in the test's own task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from store.identity import create_role_pool
from tests.support.tenants import Tenants, build_tenants


@pytest.fixture
async def user_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """vjm_app with no session role: nothing works outside acting_as()."""
    pool = await create_role_pool(database_url, role=None, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def processor_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """vjm_app acting as vjm_processor for its whole session (the trusted hot path)."""
    pool = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def tenants(user_pool: asyncpg.Pool, processor_pool: asyncpg.Pool, database_url: str) -> Tenants:
    """Three users in two teams with six projected jobs (tests.support.tenants)."""
    return await build_tenants(user_pool, processor_pool, database_url)
