"""Separate `vjm up` processes on one database (each its own port, projector candidate, stuck detector and
feed reader), and a Server-Sent Events client that follows one of them and keeps every event it received."""

from __future__ import annotations

import asyncio
import re
import signal
from dataclasses import dataclass, field

import httpx

from tests.support.cli import VJM, clean_env
from tests.support.sse import EventParser, is_comment
from tests.support.tokens import SERVICE, TEST_JWT_SECRET
from tests.support.waiting import eventually

SERVING = "vjm up: serving "


@dataclass
class ApiProcess:
    """One running `vjm up`: its process, what it printed, and where it serves."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    base: str = ""
    readers: list[asyncio.Task] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def health(self) -> dict:
        """Its /healthz (a new connection: this process is the only one on its port)."""
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as client:
            reply = await client.get("/healthz")
        assert reply.status_code == 200, reply.text
        return reply.json()

    async def leads(self) -> bool:
        """Whether its projector says it holds the lease (False once the process is gone)."""
        if not self.alive:
            return False
        return bool((await self.health())["process"]["projector_leader"])

    async def stream_count(self) -> float:
        """The event streams it serves now (its own gauge)."""
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as client:
            text = (await client.get("/metrics")).text
        found = re.search(r"^vjm_sse_clients (\S+)$", text, re.M)
        assert found is not None
        return float(found.group(1))


async def _collect(stream: asyncio.StreamReader | None, into: list[str]) -> None:
    assert stream is not None
    async for line in stream:
        into.append(line.decode(errors="replace").rstrip("\n"))


async def start_api(database_url: str) -> ApiProcess:
    """`vjm up` on a free port with the test session's identity secret, once it serves."""
    process = await asyncio.create_subprocess_exec(
        VJM, "up", "--port", "0", "--database-url", database_url,
        env=clean_env(VJM_JWT_SECRET=TEST_JWT_SECRET), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    api = ApiProcess(process)
    api.readers.append(asyncio.create_task(_collect(process.stdout, api.lines)))
    await eventually(lambda: any(SERVING in line for line in api.lines) or not api.alive, 90,
                     lambda: f"vjm up {process.pid} serving; printed {api.lines[-10:]}")
    line = next((line for line in api.lines if SERVING in line), "")
    assert line, f"vjm up exited ({process.returncode}) before serving: {api.lines[-20:]}"
    api.base = line.split(SERVING)[1].split("/ ")[0]
    return api


async def stop_api(api: ApiProcess) -> None:
    """SIGTERM, then SIGKILL if it will not stop within 30 s."""
    if api.alive:
        api.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await api.process.wait()
        except TimeoutError:
            api.process.kill()
            await api.process.wait()
    await asyncio.gather(*api.readers, return_exceptions=True)


class StreamClient:
    """Follows `/api/v1/events/stream` of one process as a service and keeps every event, in arrival order."""

    def __init__(self, base: str, after: int = 0) -> None:
        self.base, self.after = base, after
        self.events: list[dict] = []  # {"id": seq, "data": the JobChangeMessage}
        self.opened = asyncio.Event()
        self.ended: BaseException | None = None
        self._task: asyncio.Task | None = None

    @property
    def last_id(self) -> int:
        return self.events[-1]["id"] if self.events else self.after

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        parser = EventParser()
        try:
            async with httpx.AsyncClient(base_url=self.base, timeout=httpx.Timeout(10, read=None)) as client, \
                    client.stream("GET", "/api/v1/events/stream", headers=SERVICE,
                                  params={"after": self.after}) as reply:
                assert reply.status_code == 200
                self.opened.set()
                async for line in reply.aiter_lines():
                    event = None if is_comment(line) else parser.feed(line)
                    if event is not None:
                        self.events.append(event)
        except (httpx.HTTPError, AssertionError) as exc:  # the process it followed was killed
            self.ended = exc

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
