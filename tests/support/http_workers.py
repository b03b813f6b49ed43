"""Real `vjm worker --api` processes for the workers-over-HTTP tests (against tests.support.served.vjm_up):
they know no database at all (their VJM_DATABASE_URL points nowhere: a connection would fail)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import httpx

from tests.support.tokens import token
from tests.support.workers import HANDLER, VJM, Spawn, WorkerProcess
from videojobs.http.auth import SERVICE_ROLE

NO_DATABASE = "postgresql://nobody@127.0.0.1:1/no_database"  # port 1: nothing listens there
FLEET_TOKEN = token("render-fleet", SERVICE_ROLE, ttl_seconds=86400)


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
