"""The workers service: the registry of running processors (videojobs.Worker keeps its own row fresh)."""

from __future__ import annotations

from store.workers import RegisteredWorker, WorkerBeat, beat, list_workers

from .session import Session


class Workers:
    """beat (a worker about itself), list (every registered worker, with its state)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def beat(self, worker: WorkerBeat) -> None:
        """Record that `worker` is alive (or stopped): an in-place update of vjm.workers, no event."""
        async with self._session.connection() as conn:
            await beat(conn, worker)

    async def list(self, limit: int = 500) -> list[RegisteredWorker]:
        """Every registered worker, running ones first: lost after three leases without a heartbeat."""
        async with self._session.connection() as conn:
            return await list_workers(conn, limit)
