"""A Supabase-style login (not superuser; CREATEROLE, BYPASSRLS) following SECURITY.md (issue 16, item 8).

The login gets what the migration gives a non-superuser migrator (membership in vjm_owner)
and, for the working case, what SECURITY.md tells the operator to grant it (vjm_admin and
vjm_projector). `vjm listen`, `stats`, `projections verify` and `jobs list` then work; without
those grants each refuses in one clear line. Never "running" or "ok" over nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from store import EventStore, prepare_event, with_user
from tests.support.cli import VJM, avjm, environment_without
from tests.support.factories import create_data
from tests.support.waiting import eventually

OPERATOR_GRANTS = "GRANT vjm_admin, vjm_projector TO {login}"  # SECURITY.md, "Running on Supabase"


async def vjm(*args: str) -> subprocess.CompletedProcess:
    """`vjm *args` with only --database-url naming a database."""
    return await avjm(*args, env=environment_without("VJM_DATABASE_URL"))


@pytest.fixture
async def supabase_login(pg_server, database_url: str) -> AsyncIterator[str]:
    """A login like Supabase's `postgres`: NOSUPERUSER CREATEROLE BYPASSRLS, a member of vjm_owner."""
    login = f"supa_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server.url)
    try:
        await admin.execute(f"CREATE ROLE {login} LOGIN NOSUPERUSER CREATEROLE BYPASSRLS")
        await admin.execute(f"GRANT vjm_owner TO {login}")  # what sql/schema/010_roles.sql grants a migrator
        yield login
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {login}")
        await admin.close()


async def three_unprojected_events(pool) -> None:
    store = EventStore(pool)
    for user in ("u1", "u2", "u3"):
        await store.append(prepare_event("create", create_data(), user_id=user, actor="uploader"))


async def _projected(pool, jobs: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM vjm.jobs") == jobs


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


async def test_following_security_md_every_command_works_and_never_says_ok_over_nothing(
        supabase_login: str, database_url: str, pool, pg_server) -> None:
    admin = await asyncpg.connect(pg_server.url)
    try:
        await admin.execute(OPERATOR_GRANTS.format(login=supabase_login))
    finally:
        await admin.close()
    url = with_user(database_url, supabase_login)
    await three_unprojected_events(pool)

    # Nothing is projected yet and nobody projects: verify and list say so.
    verify = await vjm("projections", "verify", "--database-url", url)
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "NOT UP TO DATE" in verify.stdout and ": ok" not in verify.stdout
    listed = await vjm("jobs", "list", "--database-url", url)
    assert listed.returncode == 0, listed.stderr
    assert "3 event(s) are not projected yet" in listed.stderr

    listen = await asyncio.create_subprocess_exec(VJM, "listen", "--database-url", url,
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(60):
            line = (await listen.stdout.readline()).decode()
            assert "running" in line, line + (await listen.stderr.read()).decode()
        await eventually(lambda: _projected(pool, 3), within=60)
        stats = await vjm("stats", "--json", "--database-url", url)
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["total_jobs"] == 3 and stats.stderr == ""
        verify = await vjm("projections", "verify", "--json", "--database-url", url)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        report = json.loads(verify.stdout)
        assert report["ok"] and report["events"] == 3 and report["behind"] == 0
        listed = await vjm("jobs", "list", "--json", "--database-url", url)
        assert listed.returncode == 0 and json.loads(listed.stdout)["total"] == 3 and listed.stderr == ""
    finally:
        listen.terminate()
        await asyncio.wait_for(listen.wait(), 30)


async def test_without_the_operator_grants_each_command_refuses_in_one_line(supabase_login: str,
                                                                           database_url: str, pool) -> None:
    url = with_user(database_url, supabase_login)
    await three_unprojected_events(pool)
    for command in (["listen"], ["stats"], ["projections", "verify"], ["jobs", "list"]):
        result = await vjm(*command, "--database-url", url)
        assert result.returncode in (1, 3), (command, result.stdout, result.stderr)
        line = one_line(result)
        assert f"login {supabase_login} may not act as vjm_" in line and "GRANT vjm_" in line, line
        assert "running" not in result.stdout and " ok" not in result.stdout, result.stdout
