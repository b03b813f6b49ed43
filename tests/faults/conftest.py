"""Fixtures for the fault tests: a Postgres server the test owns, and databases on it.

Workload sizes are in tests.support.fault_sizes, the owned server in tests.support.owned_postgres,
NOTIFY counting in tests.support.notifications.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import create_migrated_database
from tests.support.owned_postgres import OwnedServer, owned_server


@pytest.fixture
def own_server() -> Iterator[OwnedServer]:
    """This test's own embedded PostgreSQL server."""
    with owned_server() as server:
        yield server


@pytest.fixture
async def own_database(own_server: OwnedServer) -> str:
    """A migrated database on this test's own server."""
    return await create_migrated_database(own_server.admin_url, "vjm_faults")


@pytest.fixture
def sync_template(pg_server, template_database) -> tuple[str, str]:
    """(admin URL, migrated template name) for sync tests (hypothesis) that make their own databases."""
    return pg_server.url, template_database
