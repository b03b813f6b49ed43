"""The two pools a deployment runs on, opened the way videojobs.connect() opens them, for tests that
read the database beside a manager (the manager keeps its own pools private)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from store.identity import ADMIN, create_role_pool
from videojobs.connect import login_of


@dataclass(frozen=True)
class RolePools:
    service: asyncpg.Pool  # connections acting as vjm_admin (a trusted service)
    users: asyncpg.Pool    # connections for end users: every use goes through acting_as()


@contextlib.asynccontextmanager
async def role_pools(database_url: str, max_size: int = 5) -> AsyncIterator[RolePools]:
    """A vjm_admin pool and an end-user pool on `database_url`, closed at the end."""
    service = await create_role_pool(database_url, role=ADMIN, login=login_of(database_url), max_size=max_size)
    try:
        users = await create_role_pool(database_url, role=None, max_size=max_size)
        try:
            yield RolePools(service, users)
        finally:
            await users.close()
    finally:
        await service.close()
