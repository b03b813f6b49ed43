"""`vjm up --workers N` as a real subprocess for tests: its announcement, its worker pids, and an HTTP
client pinned to one worker process (a kept-alive connection that worker accepted)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.cli import VJM, clean_env
from tests.support.waiting import eventually

WORKERS_LINE = re.compile(r"vjm up: (\d+) worker processes \(pids ([\d, ]+)\)")


@dataclass
class UpWorkers:
    """A running `vjm up --workers N`: what it printed, where it serves, its service token and worker pids."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    base: str = ""
    service_token: str = ""
    pids: list[int] = field(default_factory=list)

    @property
    def service(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.service_token}"}

    def printed(self, text: str) -> str:
        """The first line printed on stdout that contains `text` ("" if none yet)."""
        return next((line for line in self.lines if text in line), "")

    def printed_all(self, text: str) -> list[str]:
        """Every line printed on stdout that contains `text`."""
        return [line for line in self.lines if text in line]

    async def line_with(self, text: str, within: float = 30) -> str:
        await eventually(lambda: self.printed(text) or self.process.returncode is not None, within,
                         lambda: f"{text!r} on stdout; got {self.lines}, stderr {self.stderr[-5:]}")
        line = self.printed(text)
        assert line, f"vjm up ended without printing {text!r}: {self.lines} {self.stderr[-20:]}"
        return line

    async def stop(self, within: float = 40) -> int:
        """SIGTERM the parent; its exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(within):
            return await self.process.wait()


async def _collect(stream: asyncio.StreamReader | None, into: list[str]) -> None:
    assert stream is not None
    async for line in stream:
        into.append(line.decode(errors="replace").rstrip("\n"))


@contextlib.asynccontextmanager
async def up_workers(database_url: str, count: int, *options: str, **env: str) -> AsyncIterator[UpWorkers]:
    """`vjm up --workers count` on a free port with a secret made up for the run; stopped (and, if it
    will not stop, killed with its workers) at the end."""
    process = await asyncio.create_subprocess_exec(
        VJM, "up", "--workers", str(count), "--port", "0", "--database-url", database_url, *options,
        env=clean_env(**env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    up = UpWorkers(process)
    readers = [asyncio.create_task(_collect(process.stdout, up.lines)),
               asyncio.create_task(_collect(process.stderr, up.stderr))]
    try:
        up.base = (await up.line_with("vjm up: serving", 60)).split("serving ")[1].split("/ ")[0]
        up.service_token = (await up.line_with("service token")).split(": ", 1)[1].strip()
        found = WORKERS_LINE.search(await up.line_with("worker processes (pids"))
        assert found is not None
        up.pids = [int(pid) for pid in found.group(2).split(", ")]
        yield up
    finally:
        await _end(up)
        await asyncio.gather(*readers, return_exceptions=True)


async def _end(up: UpWorkers) -> None:
    """Stop it; if it does not stop, kill it and every worker it started."""
    try:
        await up.stop()
    except TimeoutError:
        for pid in [up.process.pid, *up.pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await up.process.wait()
        raise


def is_gone(pid: int) -> bool:
    """True when process `pid` has exited: it no longer exists, or it is a zombie not reaped yet (an
    orphan's zombie waits for whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def shown_by_ps(pid: int, text: str) -> bool:
    """Whether `text` is in the argv or the environment of process `pid` (what `ps e` shows)."""
    return any(text.encode() in Path(f"/proc/{pid}/{part}").read_bytes() for part in ("cmdline", "environ"))


async def health(base: str) -> dict:
    """`GET /healthz` on a new connection (so any worker may accept it)."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        reply = await client.get("/healthz")
        assert reply.status_code == 200, reply.text
        return reply.json()


@contextlib.asynccontextmanager
async def pinned(base: str, pid: int, within: float = 20) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose one kept-alive connection was accepted by worker `pid`: it asks /healthz on new
    connections until that worker answers one, then keeps that connection for what follows."""
    found: list[httpx.AsyncClient] = []

    async def answered_by_pid() -> bool:
        client = httpx.AsyncClient(base_url=base, timeout=10, limits=httpx.Limits(max_connections=1))
        reply = await client.get("/healthz")
        if reply.json()["process"]["pid"] == pid:
            found.append(client)
            return True
        await client.aclose()
        return False

    await eventually(answered_by_pid, within, f"a connection accepted by worker {pid}")
    try:
        yield found[0]
    finally:
        await found[0].aclose()
