"""The worker registry (sql/schema/065_workers.sql): each worker's own row, kept fresh by its heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .errors import translate_error
from .executor import Executor
from .queries import execute, fetch_all


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """What a worker says about itself with each heartbeat round."""

    worker_id: str
    host: str
    pid: int
    concurrency: int
    running: int
    platforms: list[str] | None
    version: str
    lease_seconds: float
    stopped: bool = False


class RegisteredWorker(BaseModel):
    """A worker as the registry knows it; `state` is lost after three leases without a heartbeat."""

    model_config = ConfigDict(frozen=True)

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    concurrency: int
    running: int
    platforms: list[str] | None
    version: str
    lease_seconds: float
    stopped_at: datetime | None
    state: Literal["running", "stopped", "lost"]


async def beat(executor: Executor, worker: WorkerBeat) -> None:
    """Upsert the worker's registry row (an in-place update, no event)."""
    try:
        await execute(executor, "worker_beat", worker_id=worker.worker_id, host=worker.host, pid=worker.pid,
                      concurrency=worker.concurrency, running=worker.running, platforms=worker.platforms,
                      version=worker.version, lease_seconds=float(worker.lease_seconds), stopped=worker.stopped)
    except Exception as exc:
        raise translate_error(exc) from exc


async def list_workers(executor: Executor, limit: int = 500) -> list[RegisteredWorker]:
    """The registered workers, running ones first."""
    try:
        rows = await fetch_all(executor, "worker_list", limit=limit)
    except Exception as exc:
        raise translate_error(exc) from exc
    return [RegisteredWorker.model_validate(dict(row.items())) for row in rows]
