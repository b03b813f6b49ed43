"""The projector, rebuild and verify work as a NOSUPERUSER role with only the grants listed here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from listeners import Projector, ProjectorConfig, rebuild_projections, verify_projections

GRANTS = """
GRANT USAGE ON SCHEMA vjm TO {role};
GRANT SELECT ON vjm.job_events TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON vjm.jobs, vjm.job_stats, vjm.job_stats_daily, vjm.job_changes TO {role};
GRANT SELECT, INSERT, UPDATE ON vjm.projection_checkpoints TO {role};
GRANT EXECUTE ON FUNCTION vjm.projection_horizon() TO {role};
GRANT TEMPORARY ON DATABASE "{database}" TO {role};
GRANT pg_read_all_stats TO {role};
"""


def _as_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{role}:{password}@{host}", parts.path, parts.query, parts.fragment))


@pytest.fixture
async def projector_url(database_url: str) -> AsyncIterator[str]:
    role, password = f"vjm_projector_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS "
                            f"PASSWORD '{password}'")
        await admin.execute(GRANTS.format(role=role, database=await admin.fetchval("SELECT current_database()")))
        yield _as_role(database_url, role, password)
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_projector_runs_as_a_plain_role(projector_url: str, workload) -> None:
    events = await workload(jobs=15, seed=4)
    projector = Projector(ProjectorConfig(database_url=projector_url, batch_size=10))
    try:
        result = await projector.run_once()
        assert result.leader and result.events == len(events)
        lag = await projector.lag()
        assert lag.events_behind == 0
    finally:
        await projector.stop()
    assert (await rebuild_projections(projector_url)).events == len(events)
    assert (await verify_projections(projector_url)).ok
