"""The worker's own row in the registry (vjm.workers), kept fresh with every heartbeat round."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from importlib import metadata

import structlog

from listeners.service import BackgroundService
from store.workers import WorkerBeat

from .config import WorkerConfig
from .leases import RENEW_FRACTION
from .transport import WorkerTransport

log = structlog.get_logger("vjm.worker")


def vjm_version() -> str:
    try:
        return metadata.version("vjm")
    except metadata.PackageNotFoundError:
        return "unknown"


class RegistryBeat(BackgroundService[int]):
    """Every third of a lease, tells the registry this worker lives and how many jobs it runs; on stop,
    that it stopped. A worker that stops beating shows as lost after three leases."""

    name = "worker_registry"

    def __init__(self, manager: WorkerTransport, config: WorkerConfig, running: Callable[[], int]) -> None:
        super().__init__(interval=config.lease_seconds * RENEW_FRACTION, max_backoff=config.lease_seconds)
        self._manager, self._config, self._running = manager, config, running
        self._host, self._version = socket.gethostname()[:255] or "unknown", vjm_version()

    def _beat(self, stopped: bool) -> WorkerBeat:
        config = self._config
        return WorkerBeat(worker_id=config.worker_id, host=self._host, pid=os.getpid(), concurrency=config.concurrency,
                          running=0 if stopped else self._running(),
                          platforms=[p.value for p in config.platforms] if config.platforms else None,
                          version=self._version, lease_seconds=config.lease_seconds, stopped=stopped)

    async def run_once(self) -> int:
        beat = self._beat(stopped=False)
        await self._manager.workers.beat(beat)
        return beat.running

    async def release(self) -> None:
        """Say that this worker stopped (best effort: a lost database leaves it to show as lost)."""
        try:
            await self._manager.workers.beat(self._beat(stopped=True))
        except Exception as exc:  # noqa: BLE001 - stopping anyway
            log.warning("worker_registry_stop_unrecorded", worker_id=self._config.worker_id, error=repr(exc)[:300])
