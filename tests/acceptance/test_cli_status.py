"""`vjm status` as an operator runs it (a subprocess, the test's database): with no projector running it says
so and exits 1; with one running in this process it names this process as the leader, with the lag.
The many-process case (three `vjm up`, the leader killed): tests/acceptance/test_many_processes.py."""

from __future__ import annotations

import json
import os
import socket

from tests.support.cli import avjm
from tests.support.factories import create_data
from tests.support.waiting import eventually


async def test_with_no_projector_running_it_says_so_and_exits_1(database_url: str) -> None:
    shown = await avjm("status", "--json", "--database-url", database_url)
    assert shown.returncode == 1, shown.stderr
    status = json.loads(shown.stdout)
    assert status["lease_readable"] and status["leader"] is None
    assert status["candidates"] == [] and status["standbys"] == 0
    assert status["lag"]["events_behind"] == 0 and status["lag"]["stopped_at"] is None
    assert "vjm:cli" in {group["application_name"] for group in status["sessions"]}  # its own sessions
    text = await avjm("status", "--database-url", database_url)
    assert text.returncode == 1
    assert "NO LEADER" in text.stdout and "projector candidates: none connected" in text.stdout


async def test_it_names_the_process_that_leads_and_the_lag(manager_with_listeners, database_url: str) -> None:
    await manager_with_listeners.create_job(user_id="alice", **create_data())
    assert await manager_with_listeners.maintenance.wait_for_projection(10)
    ours = f"{socket.gethostname()}:{os.getpid()}"
    status: dict = {}

    async def leads() -> bool:  # the projector takes the lease on its first pass
        shown = await avjm("status", "--json", "--database-url", database_url)
        status.update(json.loads(shown.stdout))
        return shown.returncode == 0

    await eventually(leads, 20, lambda: f"this process leading: {status}")
    assert status["leader"]["process"] == ours and status["standbys"] == 0
    assert [(c["process"], c["role"]) for c in status["candidates"]] == [(ours, "leader")]
    assert status["lag"]["events_behind"] == 0 and status["lag"]["events_applied"] == 1
    assert status["lag"]["change_seq"] == 1
    text = await avjm("status", "--database-url", database_url)
    assert text.returncode == 0 and f"led by {ours} (server pid {status['leader']['backend_pid']}" in text.stdout
    assert "projector candidates: 1 leader, 0 standbys" in text.stdout
