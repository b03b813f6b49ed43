"""One of the N processes of `vjm up --workers N` (videojobs/cli/up_workers.py starts them): the HTTP API,
the dashboard, a projector (leader-elected among the processes) and a stuck detector, serving on the
listening socket the parent bound and passed down.

What it needs comes on stdin as one JSON line (WorkerSpec), so the database URL and the identity
secret appear neither in argv nor in the environment (`ps` and /proc show neither). It writes
READY on stdout once it serves. It stops, in the order `vjm up` does (event streams and held worker
calls, then uvicorn, the listeners, the pools), on SIGTERM or when its stdin closes: the parent is
gone, so no worker outlives it. Ctrl-C belongs to the parent: a worker ignores SIGINT, and the parent
stops every worker with SIGTERM. It never migrates: the parent did, before any worker started.

Run by the parent only: `python -m videojobs.cli.up_worker` with the spec on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
from dataclasses import asdict, dataclass

import structlog
import uvicorn

from ..config import Settings
from ..connect import connect
from ..logs import configure_logging
from .main import execute
from .session import cli_principal
from .up import Server, serve_until

READY = "vjm-up-worker: ready"


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the parent hands a worker on its stdin."""

    database_url: str
    jwt_secret: str
    fd: int                      # the listening socket, inherited at this number
    index: int                   # the worker's slot, 1..N (for its log lines)
    stuck_timeout: float | None  # --stuck-timeout, else the environment's
    log_level: str | None        # --log-level, else the environment's

    def to_line(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> WorkerSpec:
        return cls(**json.loads(line))


async def serve(spec: WorkerSpec) -> int:
    """Serve on the inherited socket until SIGTERM or the parent goes; 0 after a clean stop."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    watching = asyncio.create_task(_until_stdin_closes(stop))
    settings = Settings.from_env(database_url=spec.database_url, stuck_timeout_seconds=spec.stuck_timeout)
    settings = settings.model_copy(update={"jwt_secret": spec.jwt_secret})
    from ..http import create_app

    try:
        with socket.socket(fileno=spec.fd) as sock:
            async with connect(settings=settings, listeners=True, migrate=False) as manager:
                app = create_app(manager.as_service(cli_principal()), settings=settings)
                server = Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
                served = await serve_until(server, app, stop, lambda: print(READY, flush=True), sockets=[sock])
    finally:
        watching.cancel()
    return 0 if served else 1


async def _until_stdin_closes(stop: asyncio.Event) -> None:
    """Set `stop` when stdin reaches its end: the parent closed it, or died."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while await reader.read(4096):
            pass
        stop.set()
    finally:
        transport.close()


def main() -> int:
    """Read the spec, then serve (errors as `vjm` reports them: one line and an exit code)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    line = sys.stdin.buffer.readline()
    if not line:
        print("error: vjm up worker: no spec on stdin (only `vjm up --workers N` runs this)", file=sys.stderr)
        return 2
    spec = WorkerSpec.from_line(line)
    configure_logging(spec.log_level or "WARNING")
    structlog.contextvars.bind_contextvars(up_worker=spec.index)  # on every log line of this process
    return execute(lambda _: serve(spec), argparse.Namespace(command="up"))  # "up": served on uvloop as `vjm up`


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
