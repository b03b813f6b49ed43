"""What `vjm` commands call themselves in pg_stat_activity: the real console script in a subprocess, real Postgres."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from store.application_name import API, CLI, DETECTOR, FEED, PROJECTOR
from tests.support.cli import avjm, finish, first_line_with, spawn
from tests.support.sessions import OBSERVER, names_become, sessions
from tests.support.waiting import eventually


async def test_a_one_shot_command_is_vjm_cli(database_url: str) -> None:
    """`vjm jobs list`, held mid-command by a lock on vjm.jobs, so every session it opened is there to see."""
    holder = await asyncpg.connect(database_url, server_settings={"application_name": OBSERVER})
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE vjm.jobs IN ACCESS EXCLUSIVE MODE")
            command = avjm("jobs", "list", "--json", "--database-url", database_url)
            running = asyncio.ensure_future(command)

            async def blocked() -> bool:
                rows = await sessions(database_url)
                return any(r["wait_event_type"] == "Lock" for r in rows if r["application_name"] != OBSERVER)

            await eventually(blocked, 60, "vjm jobs list waiting on the lock")
            seen = await sessions(database_url)
        result = await running
    finally:
        await holder.close()
    assert result.returncode == 0, result.stderr
    assert {row["application_name"] for row in seen} == {CLI, OBSERVER}, seen


@pytest.mark.parametrize("command, ready, names", [
    (["listen"], "projector and stuck detector running", {DETECTOR, PROJECTOR}),
    (["up", "--port", "0"], "vjm up: serving", {API, PROJECTOR, FEED}),
])
async def test_a_service_names_its_parts(database_url: str, command: list[str], ready: str, names: set[str]) -> None:
    process = spawn(*command, "--database-url", database_url)
    try:
        await first_line_with(process, ready)
        await names_become(database_url, names)
    finally:
        code, _, err = await finish(process, terminate=True)
    assert code == 0 and "Traceback" not in err, err
