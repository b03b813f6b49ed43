"""The demo's processors: real `vjm worker` processes running videojobs.cli.demo_handlers:encode.

Each is started as `vjm worker` would be from a shell, in a process group of its own, so that a
Ctrl-C at the terminal reaches the demo only, which then stops each worker with one SIGTERM.
Should the demo be killed outright, a worker stops by itself (demo_handlers watches its parent),
and a frozen one is sent SIGHUP and SIGCONT by the kernel (its group is then orphaned). The
demo reads what their handlers print on stdout (JSON lines, demo_handlers.say) and what
the runtime logs on stderr (JSON: `worker_job_ended`, `worker_job_lost`), and hands both
to `on_line(worker, record)`. `Fleet` starts them, and stops every one on the way out,
whatever the way out is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import VJMError

HANDLER = "videojobs.cli.demo_handlers:encode"
LAUNCH = "import sys; from videojobs.cli import main; sys.exit(main())"  # `vjm`, with this interpreter
READY_WITHIN, STOP_WITHIN = 60.0, 10.0  # seconds: to start (imports, connections), to stop gracefully


@dataclass(frozen=True)
class WorkerSpec:
    """One worker of the demo: its id, its slots, and (for the hung one) the job it freezes on."""

    name: str
    concurrency: int
    freeze_on: int | None = None


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker of the demo shares."""

    database_url: str
    lease_seconds: float
    pace: float
    poll_interval: float = 0.5
    shutdown_timeout: float = 3.0


LineHandler = Callable[["WorkerProcess", dict[str, Any]], None]


@dataclass
class WorkerProcess:
    """One `vjm worker` subprocess and what it said so far."""

    spec: WorkerSpec
    process: asyncio.subprocess.Process
    on_line: LineHandler
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stderr_tail: list[str] = field(default_factory=list)
    readers: list[asyncio.Task] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, spec: WorkerSpec, options: WorkerOptions, on_line: LineHandler) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LAUNCH, "--log-level", "INFO", "worker", HANDLER, "--worker-id", spec.name,
            "--concurrency", str(spec.concurrency), "--lease", str(options.lease_seconds),
            "--poll-interval", str(options.poll_interval), "--shutdown-timeout", str(options.shutdown_timeout),
            "--database-url", options.database_url,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=_environment(spec, options), process_group=0)
        worker = cls(spec, process, on_line)
        worker.readers = [asyncio.create_task(worker._read(process.stdout, worker._stdout_line)),
                          asyncio.create_task(worker._read(process.stderr, worker._stderr_line))]
        return worker

    async def _read(self, stream: asyncio.StreamReader | None, take: Callable[[str], None]) -> None:
        assert stream is not None
        async for raw in stream:
            take(raw.decode(errors="replace").rstrip("\n"))

    def _stdout_line(self, line: str) -> None:
        if line.startswith("vjm worker "):  # printed once its Worker exists, before it connects
            self.ready.set()
        elif line.startswith("{"):
            self.on_line(self, json.loads(line))

    def _stderr_line(self, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and str(record.get("event", "")).startswith("worker_"):
            self.on_line(self, {**record, "log": True})
        else:
            self.stderr_tail = [*self.stderr_tail[-19:], line]

    def thaw(self) -> None:
        """SIGCONT: a frozen worker goes on where it stopped."""
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)

    def ask_to_stop(self) -> None:
        """Thaw it if frozen, then one SIGTERM: stop claiming, finish or release what runs, exit."""
        if self.process.returncode is None:
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGTERM)

    async def stopped(self, within: float) -> int:
        """Its exit code, once it exited (killed after `within` seconds)."""
        try:
            async with asyncio.timeout(within):
                return await self.process.wait()
        except TimeoutError:
            self.kill()
            return await self.process.wait()
        finally:
            for reader in self.readers:
                reader.cancel()

    def kill(self) -> None:
        if self.process.returncode is None:
            self._signal(signal.SIGKILL)


def _environment(spec: WorkerSpec, options: WorkerOptions) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VJM_DATABASE_URL", "VJM_LOG_LEVEL")}
    env.update(VJM_LOG_JSON="1", VJM_DEMO_PACE=str(options.pace), VJM_DEMO_PARENT=str(os.getpid()))
    if spec.freeze_on:
        env["VJM_DEMO_FREEZE_ON"] = str(spec.freeze_on)
    return env


@contextlib.asynccontextmanager
async def fleet(specs: list[WorkerSpec], options: WorkerOptions, on_line: LineHandler) -> AsyncIterator[
        list[WorkerProcess]]:
    """Start the workers and wait until each runs; on the way out (an error, Ctrl-C) stop every one:
    SIGTERM, then SIGKILL for any still there after STOP_WITHIN seconds."""
    workers: list[WorkerProcess] = []
    try:
        for spec in specs:
            workers.append(await WorkerProcess.start(spec, options, on_line))
        await _all_ready(workers)
        yield workers
    finally:
        await stop_all(workers)


async def _all_ready(workers: list[WorkerProcess]) -> None:
    try:
        async with asyncio.timeout(READY_WITHIN):
            await _each_ready(workers)
    except TimeoutError as exc:
        raise VJMError(f"the workers did not start within {READY_WITHIN:g} s") from exc


async def _each_ready(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        waiting = asyncio.ensure_future(worker.ready.wait())
        exited = asyncio.ensure_future(worker.process.wait())
        await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        exited.cancel()
        if not worker.ready.is_set():
            raise VJMError(f"{worker.spec.name} exited {worker.process.returncode}: " + "\n".join(worker.stderr_tail))


async def stop_all(workers: list[WorkerProcess]) -> list[int]:
    """Stop every worker (the signals go out at once, to all); their exit codes."""
    for worker in workers:
        worker.ask_to_stop()
    try:
        return list(await asyncio.gather(*(worker.stopped(STOP_WITHIN) for worker in workers)))
    finally:
        for worker in workers:  # interrupted while waiting (a second Ctrl-C): leave nothing behind
            worker.kill()
