"""The worker registry, step 5 of issue 18: each worker keeps its row fresh; stopped and lost workers show so."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator

import pytest

from tests.support.waiting import eventually
from tests.support.workers import VJM, Spawn, worker_spawner
from tests.support.workers import create_job_named as create


@pytest.fixture
async def spawn_worker(database_url: str) -> AsyncIterator[Spawn]:
    async with worker_spawner(database_url) as spawn:
        yield spawn


async def registered(manager) -> dict[int, object]:
    """The registry, by the worker's pid."""
    return {w.pid: w for w in await manager.workers.list()}


async def test_workers_register_beat_and_show_as_stopped_or_lost(manager, spawn_worker, database_url) -> None:
    job = await create(manager, "hang.mp4")
    calm = await spawn_worker("--lease", "1", "--concurrency", "2", "--platform", "tiktok",
                              "--shutdown-timeout", "0")
    doomed = await spawn_worker("--lease", "1", "--platform", "instagram")
    await calm.line_with("started", job.job_id)

    async def calm_runs_one() -> bool:
        row = (await registered(manager)).get(calm.process.pid)
        return row is not None and (row.state, row.running, row.concurrency) == ("running", 1, 2)

    await eventually(calm_runs_one, within=10)
    listed = await asyncio.create_subprocess_exec(VJM, "workers", "--json", "--database-url", database_url,
                                                  stdout=asyncio.subprocess.PIPE)
    out, _ = await listed.communicate()
    by_pid = {w["pid"]: w for w in json.loads(out)}
    assert by_pid[calm.process.pid]["platforms"] == ["tiktok"]
    assert by_pid[doomed.process.pid]["platforms"] == ["instagram"]
    calm.send(signal.SIGTERM)
    assert await calm.wait() == 0
    doomed.process.kill()
    await eventually(lambda: _states(manager, {calm.process.pid: "stopped", doomed.process.pid: "lost"}), within=10)


async def _states(manager, wanted: dict[int, str]) -> bool:
    rows = await registered(manager)
    return all(pid in rows and rows[pid].state == state for pid, state in wanted.items())
