"""Real `vjm worker` processes for tests: start one, read what its handlers print, signal it, wait for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from tests.support.factories import create_data

VJM = str(Path(sys.executable).with_name("vjm"))
HANDLER = "tests.support.worker_handlers:handle"


class WorkerProcess:
    """One `vjm worker` subprocess; its stdout lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.stderr = ""
        self._grew = asyncio.Event()
        self._readers = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]

    @classmethod
    async def start(cls, database_url: str, *options: str, env: dict[str, str] | None = None) -> WorkerProcess:
        env = {**{k: v for k, v in os.environ.items() if k != "VJM_DATABASE_URL"}, **(env or {})}
        process = await asyncio.create_subprocess_exec(
            VJM, "--log-level", "INFO", "worker", HANDLER, "--database-url", database_url, *options,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        worker = cls(process)
        await worker.line_with("vjm", "worker")
        return worker

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode().rstrip("\n"))
            self._grew.set()
        self._grew.set()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.stderr += raw.decode()

    def matching(self, *words: object) -> list[str]:
        """The stdout lines so far whose words start with `words`."""
        wanted = [str(w) for w in words]
        return [line for line in self.lines if line.split()[:len(wanted)] == wanted]

    async def line_with(self, *words: object, count: int = 1, within: float = 30) -> str:
        """The `count`-th stdout line that starts with `words`, waiting up to `within` seconds for it."""
        async with asyncio.timeout(within):
            while len(self.matching(*words)) < count:
                if self.process.returncode is not None and self._readers[0].done():
                    raise AssertionError(f"worker exited {self.process.returncode} before {words}: {self.stderr}")
                self._grew.clear()
                await self._grew.wait()
        return self.matching(*words)[count - 1]

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def wait(self, within: float = 30) -> int:
        """Its exit code (TimeoutError after `within` seconds)."""
        async with asyncio.timeout(within):
            code = await self.process.wait()
            await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for reader in self._readers:
            reader.cancel()


Spawn = Callable[..., Awaitable[WorkerProcess]]


@contextlib.asynccontextmanager
async def worker_spawner(database_url: str, env: dict[str, str] | None = None) -> AsyncIterator[Spawn]:
    """`spawn(*options)` starts a `vjm worker` process on `database_url` (with `env` added to its
    environment); every one is killed at the end. A test module makes it a fixture:
    `async with worker_spawner(database_url) as spawn: yield spawn`."""
    started: list[WorkerProcess] = []

    async def spawn(*options: str) -> WorkerProcess:
        worker = await WorkerProcess.start(database_url, "--poll-interval", "0.1", *options, env=env)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        await worker.kill()


async def create_job_named(manager, filename: str, **overrides):
    """A job whose filename tells the test handlers what to do (tests.support.worker_handlers)."""
    return await manager.create_job(user_id="studio", **create_data(original_filename=filename, **overrides))


async def events_of(manager, job_id) -> list:
    """The job's events, oldest first."""
    return list(await manager.audit.history(job_id))


async def status_is(manager, job_id, status: str) -> bool:
    return (await manager.get_job_by_id(job_id)).status == status


@contextlib.asynccontextmanager
async def running_in_process(worker) -> AsyncIterator[None]:
    """Run a videojobs.Worker in this process (no signal handlers) for the block; stop it and wait at the end."""
    running = asyncio.create_task(worker.run(handle_signals=False))
    try:
        yield
    finally:
        worker.stop()
        await running


async def ended(worker, job_id, timeout: float = 20):  # noqa: ASYNC109 - as Signal.next
    """The worker's next RunResult for `job_id` (its `ended` signal)."""
    return await worker.signals.ended.next(lambda result: result.job_id == job_id, timeout=timeout)
