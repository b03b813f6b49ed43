"""One claimed attempt: its handler's task, and what the runtime reports when the handler ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import structlog

from statemachine import InvalidTransition, JobNotFound, ValidationError, validate_payload
from statemachine.payload_rules import MAX_PROCESSING_TIME

from ..models import Attempt
from .config import WorkerConfig
from .context import JobContext, JobLost
from .errors import Retry, backoff_delay, error_text
from .reporter import CompletionBatcher
from .transport import WorkerTransport

log = structlog.get_logger("vjm.worker")

Handler = Callable[[Any, JobContext], Coroutine[Any, Any, Any]]
StopReason = Literal["lost", "shutdown"]
# How an attempt ended, as the runtime saw it: what it reported, or why it reported nothing.
Outcome = Literal["completed", "failed", "requeued", "released", "lost", "refused", "unreported"]


@dataclass(frozen=True, slots=True)
class RunSupport:
    """What every attempt of one worker shares."""

    handler: Handler
    manager: WorkerTransport
    batcher: CompletionBatcher
    config: WorkerConfig
    transient: tuple[type[BaseException], ...]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What became of one attempt."""

    job_id: UUID
    attempt: int
    outcome: Outcome
    processing_time: float
    detail: str | None = None


class JobRun:
    """Runs the handler in a task of its own, so that the runtime can cancel it (`cancel`) and still report."""

    def __init__(self, attempt: Attempt, context: JobContext, runtime: RunSupport) -> None:
        self.attempt, self.context = attempt, context
        self._handler, self._batcher, self._config = runtime.handler, runtime.batcher, runtime.config
        self._manager, self._transient = runtime.manager, runtime.transient
        self.stop_reason: StopReason | None = None
        self.task: asyncio.Task[Any] | None = None
        self.on_handler_end: Callable[[], None] = lambda: None  # its slot frees up: the report may still be in flight

    @property
    def handler_running(self) -> bool:
        """True until the handler has returned or raised (the attempt then only reports: it holds no slot)."""
        return self.task is None or not self.task.done()

    def cancel(self, reason: StopReason) -> None:
        """Cancel the handler: `lost` (the job is not ours any more: report nothing) or `shutdown` (release it)."""
        if self.stop_reason != "lost":
            self.stop_reason = reason
        self.context.lost = self.context.lost or reason == "lost"
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> RunResult:
        """Run the handler to its end and report the outcome; never raises."""
        started = time.monotonic()
        self.task = asyncio.create_task(self._handler(self.attempt.job, self.context),
                                        name=f"vjm-job-{self.attempt.job_id}")
        if self.stop_reason is not None:
            self.task.cancel()
        await asyncio.wait({self.task})
        self.on_handler_end()
        elapsed = min(time.monotonic() - started, MAX_PROCESSING_TIME)
        if self.stop_reason == "lost" or self.context.lost:
            return self._result("lost", elapsed)
        try:
            return await self._report(self.task, elapsed)
        except (InvalidTransition, JobNotFound) as exc:  # the job moved on meanwhile: fencing refused the report
            return self._result("refused", elapsed, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the job is re-run elsewhere
            log.warning("worker_report_failed", job_id=str(self.attempt.job_id), error=repr(exc)[:300])
            return self._result("unreported", elapsed, repr(exc)[:300])

    async def _report(self, task: asyncio.Task[Any], elapsed: float) -> RunResult:
        if task.cancelled():
            return await self._release(elapsed)
        exc = task.exception()
        if exc is None:
            return await self._complete(task.result(), elapsed)
        if isinstance(exc, JobLost):
            return self._result("lost", elapsed)
        if isinstance(exc, Retry) or isinstance(exc, self._transient):
            return await self._requeue(exc, elapsed)
        await self._manager.fail_job(self.attempt.job_id, error_text(exc), attempt=self.attempt.attempt)
        return self._result("failed", elapsed, error_text(exc))

    async def _complete(self, returned: Any, elapsed: float) -> RunResult:
        completion = {"job_id": str(self.attempt.job_id), "attempt": self.attempt.attempt,
                      "output_paths": returned, "processing_time": round(elapsed, 3)}
        try:
            validate_payload("complete", {"output_paths": returned, "processing_time": round(elapsed, 3)})
        except ValidationError as exc:
            error = error_text(ValueError(f"the handler returned no valid output paths: {exc}"))
            await self._manager.fail_job(self.attempt.job_id, error, attempt=self.attempt.attempt)
            return self._result("failed", elapsed, error)
        result = await self._batcher.complete(completion)
        if not result.ok:
            return self._result("refused", elapsed, f"{result.error_type}: {result.error}")
        return self._result("completed", elapsed)

    async def _requeue(self, exc: BaseException, elapsed: float) -> RunResult:
        after = exc.after if isinstance(exc, Retry) else None
        if after is None:
            after = backoff_delay(self.attempt.attempt, self._config.backoff_base, self._config.backoff_max)
        job = await self._manager.processors.requeue_job(self.attempt.job_id, self.attempt.attempt,
                                                         error=error_text(exc), retry_after=after)
        outcome: Outcome = "requeued" if job.status == "queued" else "failed"
        return self._result(outcome, elapsed, f"retry after {after:g} s")

    async def _release(self, elapsed: float) -> RunResult:
        """The handler was cancelled (shutdown): give the job back, and the attempt it took."""
        reason = "worker shutting down" if self.stop_reason == "shutdown" else "handler cancelled"
        await self._manager.processors.release_job(self.attempt.job_id, self.attempt.attempt, reason=reason)
        return self._result("released", elapsed, reason)

    def _result(self, outcome: Outcome, elapsed: float, detail: str | None = None) -> RunResult:
        result = RunResult(self.attempt.job_id, self.attempt.attempt, outcome, round(elapsed, 3), detail)
        log.info("worker_job_ended", job_id=str(result.job_id), attempt=result.attempt, outcome=outcome,
                 seconds=result.processing_time, detail=detail)
        return result
