"""videojobs.Worker: the processor runtime. It claims jobs into free slots, runs each handler under its
attempt, reports the outcome, and shuts down gracefully.

    worker = videojobs.Worker(database_url, concurrency=4, platforms=["tiktok"])

    @worker.handler
    async def transcode(job, ctx):
        await ctx.progress(percent=40, clips_done=2, phase="encode")
        return ["/out/clip1.mp4"]

    await worker.run()          # until stop() or SIGTERM/SIGINT
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID

import pydantic
import structlog

from listeners.service import Signal
from statemachine import ValidationError, to_validation_error
from store.application_name import application_name, worker_name

from ..connect import connect
from ..manager import VideoJobManager
from ..models import Attempt
from .claimer import ClaimLoop
from .config import WorkerConfig
from .context import JobContext, JobLost
from .errors import TransientError
from .job_run import Handler, JobRun, RunResult, RunSupport
from .leases import LeaseKeeper
from .registry import RegistryBeat
from .reporter import CompletionBatcher
from .transport import LONG_POLL_PAUSE, ApiAccess, WatchTargets, WorkerLink, database_link

log = structlog.get_logger("vjm.worker")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class WorkerSignals:
    """What a worker did, for tests and probes to await: each attempt `started` and `ended`."""

    def __init__(self) -> None:
        self.started: Signal[Attempt] = Signal()
        self.ended: Signal[RunResult] = Signal()


class Worker:
    """Runs one async handler over queued jobs. See the module docstring and README "Writing a processor"."""

    def __init__(self, database_url: str | None = None, *, manager: VideoJobManager | None = None,
                 api: ApiAccess | None = None, transient: tuple[type[BaseException], ...] = (TransientError,),
                 lease_for: Callable[[Any], float] | None = None, **settings: Any) -> None:
        """`settings` are WorkerConfig's (concurrency, platforms, lease_seconds, shutdown_timeout, ...);
        `transient` the exceptions re-queued with backoff; `lease_for(job)` a job's own lease length.
        With `api` (an ApiAccess: URL and service token) the worker runs over the HTTP API and never
        connects to the database; else over `manager`, else over a connection to `database_url`."""
        if api is not None:
            settings.setdefault("poll_interval", LONG_POLL_PAUSE)  # the long poll waits, not the loop
        try:
            self.config = WorkerConfig(**settings)
        except pydantic.ValidationError as exc:
            raise to_validation_error(exc) from exc
        self._database_url, self._manager, self._api = database_url, manager, api
        self._transient, self._lease_for = transient, lease_for
        self._keeper: LeaseKeeper | None = None
        self._handler: Handler | None = None
        self._runs: dict[UUID, JobRun] = {}
        self._supervisors: set[asyncio.Task[RunResult]] = set()
        self._stop_requested = asyncio.Event()  # one run per Worker: a stop before run() makes it return at once
        self._signals_seen = 0
        self._claims: ClaimLoop | None = None
        self.signals = WorkerSignals()

    def handler(self, function: Handler) -> Handler:
        """Decorator: the async function `(job, ctx) -> output paths` this worker runs."""
        self._handler = function
        return function

    @property
    def running_jobs(self) -> list[UUID]:
        """The jobs whose handlers run now."""
        return list(self._runs)

    def stop(self) -> None:
        """Stop claiming, give running handlers `shutdown_timeout` seconds, then cancel and release them."""
        self._stop_requested.set()

    async def run(self, *, handle_signals: bool = True) -> None:
        """Claim and run jobs until `stop()` (or SIGTERM/SIGINT with `handle_signals`); returns when all is reported."""
        if self._handler is None:
            raise ValidationError("no handler: decorate one with @worker.handler", field="handler")
        # Every connection it opens (its manager's pools, its LISTEN) is vjm:worker:<id> in pg_stat_activity.
        with application_name(worker_name(self.config.worker_id)):
            async with self._opened_link() as link:
                transport = link.transport
                support = RunSupport(self._handler, transport, CompletionBatcher(transport), self.config,
                                     self._transient)
                with self._signal_handlers(handle_signals):
                    await self._serve(link, support, self._stop_requested)
        log.info("worker_stopped", worker_id=self.config.worker_id)

    async def _serve(self, link: WorkerLink, support: RunSupport, stop_requested: asyncio.Event) -> None:
        """Start the services, run until the stop, then drain and stop them in the order that loses nothing."""
        transport = support.manager
        self._keeper = keeper = LeaseKeeper(transport, self.config, self._lost)
        self._claims = claims = ClaimLoop(transport, self.config, self._free_slots,
                                          lambda attempt: self._start(attempt, support))
        watcher = link.make_watcher(WatchTargets(lambda: self._runs, keeper, claims.wake))
        registry = RegistryBeat(transport, self.config, lambda: len(self._runs))
        for service in (support.batcher, keeper, watcher, registry, claims):
            await service.start()
        log.info("worker_started", worker_id=self.config.worker_id, concurrency=self.config.concurrency)
        await stop_requested.wait()
        link.interrupt()  # a claim waiting in a long poll ends now, claiming nothing
        await claims.stop()
        await self._drain()
        await support.batcher.stop()  # the last reports go out while the leases are still held
        await watcher.stop()
        await keeper.stop()
        await registry.stop()

    def _free_slots(self) -> int:
        """Slots are handlers: an attempt whose handler has ended and whose report is in flight holds none."""
        return self.config.concurrency - sum(run.handler_running for run in self._runs.values())

    def _start(self, attempt: Attempt, support: RunSupport) -> None:
        assert self._keeper is not None
        own = self._lease_for(attempt.job) if self._lease_for is not None else None
        self._keeper.hold(attempt, own or self.config.lease_seconds, renew_now=own is not None)
        context = JobContext(attempt, support.manager, self._extend_lease_of(attempt.job_id))
        run = JobRun(attempt, context, support)
        run.on_handler_end = self._claims.wake if self._claims is not None else run.on_handler_end
        self._runs[attempt.job_id] = run
        supervisor = asyncio.create_task(run.run(), name=f"vjm-attempt-{attempt.job_id}")
        self._supervisors.add(supervisor)
        supervisor.add_done_callback(lambda task: self._ended(attempt.job_id, task))
        self.signals.started.emit(attempt)

    def _ended(self, job_id: UUID, task: asyncio.Task[RunResult]) -> None:
        self._runs.pop(job_id, None)
        if self._keeper is not None:
            self._keeper.drop(job_id)
        self._supervisors.discard(task)
        if self._claims is not None:
            self._claims.wake()
        if not task.cancelled():
            self.signals.ended.emit(task.result())

    def _extend_lease_of(self, job_id: UUID) -> Callable[[float | None], Any]:
        async def extend(seconds: float | None) -> None:
            """Renew this job's lease now (with a new length, if given); JobLost if it is not ours any more."""
            if self._keeper is None or not await self._keeper.extend(job_id, seconds):
                raise JobLost(f"job {job_id} is no longer this worker's")
        return extend

    def _lost(self, job_ids: set[UUID]) -> None:
        """The lease keeper learnt these jobs are no longer ours: cancel their handlers, report nothing."""
        for job_id in job_ids:
            run = self._runs.get(job_id)
            if run is not None:
                log.info("worker_job_lost", job_id=str(job_id), attempt=run.attempt.attempt)
                run.cancel("lost")

    async def _drain(self) -> None:
        """Wait up to shutdown_timeout for running handlers; cancel the rest (they release their jobs)."""
        if self._supervisors:
            log.info("worker_draining", running=len(self._supervisors), timeout=self.config.shutdown_timeout)
            await asyncio.wait(set(self._supervisors), timeout=self.config.shutdown_timeout)
        for run in list(self._runs.values()):
            run.cancel("shutdown")
        if self._supervisors:
            await asyncio.wait(set(self._supervisors))

    @contextlib.asynccontextmanager
    async def _opened_link(self) -> AsyncIterator[WorkerLink]:
        if self._api is not None:
            from .http_client import http_link  # httpx: only a worker over HTTP needs it

            async with http_link(self._api, self.config) as link:
                yield link
        elif self._manager is not None:
            yield database_link(self._manager)
        else:
            async with connect(self._database_url, listeners=False) as manager:
                yield database_link(manager.as_service(f"worker:{self.config.worker_id}"[:200]))

    @contextlib.contextmanager
    def _signal_handlers(self, install: bool) -> Iterator[None]:
        """SIGTERM/SIGINT: the first stops gracefully, a second exits at once."""
        loop = asyncio.get_running_loop()
        if install:
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            if install:
                for sig in STOP_SIGNALS:
                    loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals_seen += 1
        if self._signals_seen > 1:
            log.warning("worker_exit_now", signal=sig.name)
            os._exit(128 + sig.value)
        log.info("worker_stopping", signal=sig.name, running=len(self._runs))
        self.stop()
