"""Completions batched: jobs that finish together are completed in one call (manager.complete_jobs)."""

from __future__ import annotations

import asyncio
from typing import Any

from listeners.service import BackgroundService

from ..models import BulkResult
from .transport import WorkerTransport

BATCH = 50  # vjm.append_events takes 50 transitions per call


class CompletionBatcher(BackgroundService[int]):
    """`await batcher.complete(completion)` queues one; each pass sends what is queued, up to BATCH, at once.

    While a call is in flight the next completions gather, so the batch grows with the load
    and an idle worker's completion goes out at once. A pass returns how many it sent.
    `stop()` sends what is left before it returns.
    """

    name = "worker_completions"

    def __init__(self, manager: WorkerTransport) -> None:
        super().__init__(interval=0.0, max_backoff=1.0)
        self._manager = manager
        self._pending: list[tuple[dict[str, Any], asyncio.Future[BulkResult]]] = []
        self._ready = asyncio.Event()

    async def complete(self, completion: dict[str, Any]) -> BulkResult:
        """Queue `{"job_id", "attempt", "output_paths", "processing_time"}`; the job's result when sent."""
        future: asyncio.Future[BulkResult] = asyncio.get_running_loop().create_future()
        self._pending.append((completion, future))
        self._ready.set()
        return await future

    async def run_once(self) -> int:
        batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
        if not self._pending:
            self._ready.clear()
        if not batch:
            return 0
        try:
            results = await self._manager.complete_jobs([completion for completion, _ in batch], with_jobs=False)
        except Exception as exc:  # noqa: BLE001 - every waiter hears it; the loop goes on
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return 0
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        return len(batch)

    async def idle(self, result: int) -> None:
        if self._pending:
            return
        waiting = asyncio.ensure_future(self._ready.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        stopping.cancel()

    async def release(self) -> None:
        """Send what was queued before the stop."""
        while self._pending:
            await self.run_once()
