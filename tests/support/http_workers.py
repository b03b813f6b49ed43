"""Real processes for the workers-over-HTTP tests: `vjm up` serving a test's database, and `vjm worker --api`
processes that know no database at all (their VJM_DATABASE_URL points nowhere: a connection would fail)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.support.tokens import token
from tests.support.waiting import eventually
from tests.support.workers import HANDLER, VJM, Spawn, WorkerProcess
from videojobs.http.auth import SERVICE_ROLE

SERVING = "vjm up: serving"
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/no_database"  # port 1: nothing listens there
FLEET_TOKEN = token("render-fleet", SERVICE_ROLE, ttl_seconds=86400)


@contextlib.asynccontextmanager
async def vjm_up(database_url: str, output: Path, **env: str) -> AsyncIterator[str]:
    """`vjm up` on a free port against `database_url` (its output goes to `output`); yields its base URL."""
    environment = {**{k: v for k, v in os.environ.items() if k != "VJM_DATABASE_URL"}, **env}
    with output.open("w") as sink:
        process = await asyncio.create_subprocess_exec(VJM, "up", "--port", "0", "--database-url", database_url,
                                                       env=environment, stdout=sink, stderr=sink)
    try:
        await eventually(lambda: serving_line(output) or process.returncode is not None, 60, "vjm up to serve")
        line = serving_line(output)
        assert line, f"vjm up did not start (see {output})"
        yield line.split("serving ")[1].split("/ ")[0]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()


def serving_line(output: Path) -> str:
    """The line in which `vjm up` says where it serves ("" until then)."""
    return next((line for line in output.read_text().splitlines() if SERVING in line), "")


async def start_http_worker(api: str, *options: str, token: str = FLEET_TOKEN) -> WorkerProcess:
    """One `vjm worker --api` process running tests.support.worker_handlers:handle."""
    env = {**os.environ, "VJM_DATABASE_URL": NO_DATABASE, "VJM_LOG_JSON": "1"}
    process = await asyncio.create_subprocess_exec(
        VJM, "--log-level", "INFO", "worker", HANDLER, "--api", api, "--token", token, *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    worker = WorkerProcess(process)
    await worker.line_with("vjm", "worker")
    return worker


@contextlib.asynccontextmanager
async def http_worker_spawner(api: str) -> AsyncIterator[Spawn]:
    """`spawn(*options)` starts a `vjm worker --api` process; every one is killed at the end."""
    started: list[WorkerProcess] = []

    async def spawn(*options: str) -> WorkerProcess:
        worker = await start_http_worker(api, *options)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        await worker.kill()


async def registry(api: str) -> dict[str, dict]:
    """GET /api/v1/admin/workers, by worker id."""
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {FLEET_TOKEN}"}) as client:
        response = await client.get("/api/v1/admin/workers")
        response.raise_for_status()
        return {w["worker_id"]: w for w in response.json()["workers"]}
