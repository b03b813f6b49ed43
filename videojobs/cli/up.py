"""`vjm up`: the HTTP API, the web dashboard, the projector and the stuck detector in one process
(or in N processes serving one port: `--workers N`, videojobs/cli/up_workers.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import secrets
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from ..config import Settings
from ..errors import ValidationError
from .session import add_database_option, open_manager, require, settings_of, shutdown_event

MAX_WORKERS = 64  # `--workers`: each process holds its own pools and three connections more (README "Connections")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `up` command."""
    parser = sub.add_parser("up", help="serve the HTTP API and dashboard, with the projector and stuck detector",
                            description="Migrate, then serve the HTTP API and the web dashboard (at /) with "
                                        "uvicorn, and run the projector and stuck-job detector in the same "
                                        "process, until Ctrl-C or SIGTERM. Postgres: --database-url, "
                                        "VJM_DATABASE_URL, else the embedded server in VJM_DATA_DIR (kept "
                                        "across runs). Without VJM_JWT_SECRET a secret is made up for this run. "
                                        "--workers N serves one port from N processes, one of which leads the "
                                        "projector.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port, 0 for any free one (default 8000)")
    parser.add_argument("--stuck-timeout", type=float, metavar="SECONDS",
                        help="reset processing jobs idle this long (default VJM_STUCK_TIMEOUT_SECONDS or 900)")
    parser.add_argument("--secret-file", type=Path, metavar="PATH",
                        help="the identity secret, kept across restarts: read from PATH, or made up and written "
                             "there (mode 0600) on the first run; instead of VJM_JWT_SECRET")
    parser.add_argument("--workers", type=worker_count, default=1, metavar="N",
                        help=f"worker processes serving the port (1-{MAX_WORKERS}, default 1: everything in this "
                             "process); each runs the API, a projector (one leads) and a stuck detector")
    add_database_option(parser)
    parser.set_defaults(handler=run)


def worker_count(text: str) -> int:
    """--workers: a whole number from 1 to MAX_WORKERS (argparse type: exit 2 otherwise)."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{count} is not between 1 and {MAX_WORKERS}")
    return count


def secret_from_file(path: Path) -> tuple[str, bool]:
    """The secret in `path`, or a new one written there (mode 0600, never over an existing file); and
    whether it was made now."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secret + "\n")
        return secret, True
    if len(secret) < 16:
        raise ValidationError(f"{path} holds no secret of at least 16 characters", field="secret_file")
    return secret, False


class Server(uvicorn.Server):
    """uvicorn without its own signal handling: `vjm up` stops it, then closes the listeners and Postgres."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets=None) -> None:
        """Bind and start, then say so (uvicorn itself has no startup event)."""
        await super().startup(sockets)
        self.ready.set()


async def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM, then shut down in order: HTTP, listeners, database."""
    from ..http import create_app

    settings, source = _with_secret(args, settings_of(args, stuck_timeout_seconds=args.stuck_timeout))
    if args.workers > 1:
        from .up_workers import run_workers

        return await run_workers(args, settings, announce=lambda host, port: _announce(
            host, port, settings, source, args.secret_file))
    stop = shutdown_event()
    async with open_manager(args, listeners=True, settings=settings) as manager:
        app = create_app(manager, settings=settings)
        server = Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on"))

        def started() -> None:
            host, port = server.servers[0].sockets[0].getsockname()[:2]
            _announce(host, port, settings, source, args.secret_file)

        if not await serve_until(server, app, stop, started, say_stopping=True):
            print(f"error: could not serve on {args.host}:{args.port} (is the port in use?)", flush=True)
            return 1
    print("vjm up: stopped", flush=True)
    return 0


async def serve_until(server: Server, app, stop: asyncio.Event, started: Callable[[], None], *,
                      sockets: list | None = None, say_stopping: bool = False) -> bool:
    """Serve until `stop` (calling `started()` once serving), then stop in order: event streams and held
    worker calls first (uvicorn waits for every response to end before it stops), then uvicorn.
    False when it never served."""
    serving = asyncio.create_task(server.serve(sockets))
    if await _started(server, serving):
        settle_the_heap()
        started()
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if say_stopping:
            print("vjm up: stopping ...", flush=True)
        await app.state.vjm.close_feed_hub()
        server.should_exit = True
    await serving
    return server.started


def settle_the_heap() -> None:
    """What start-up made (modules, the app, its schemas: most of the heap) leaves the collector's view
    (gc.freeze), so a full collection walks only what requests made since: without it, full collections
    under load took up to 55 ms each, every second or two, and set the API's p99 (bench/README.md, "the
    HTTP path"). The youngest generation is collected every 7,000 allocations, not 700: a request's
    objects die young, and 2,100 collections in 20 s of load cost 2.5% of the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 10, 10)


def _with_secret(args: argparse.Namespace, settings: Settings) -> tuple[Settings, str | None]:
    """The settings with the token secret to use, and where it came from (None: made up for this run)."""
    if args.secret_file is not None:
        require(settings.jwt_secret is None, "give VJM_JWT_SECRET or --secret-file, not both", "secret_file")
        secret, made = secret_from_file(args.secret_file)
        source = f"{args.secret_file} ({'made now, mode 0600' if made else 'kept across restarts'})"
        return settings.model_copy(update={"jwt_secret": secret}), source
    if settings.jwt_secret is None:
        return settings.model_copy(update={"jwt_secret": secrets.token_urlsafe(32)}), None
    return settings, "VJM_JWT_SECRET"


async def _started(server: Server, serving: asyncio.Task) -> bool:
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({ready, serving}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    return server.started


def _announce(host: str, port: int, settings, source: str | None, secret_file: Path | None) -> None:
    """Where it serves; and, unless the secret is the operator's own (VJM_JWT_SECRET), where the secret
    comes from, a service token, and a user-token command that works as printed."""
    from ..http.auth import SERVICE_ROLE, mint_token

    base = f"http://{host}:{port}"
    print(f"vjm up: serving {base}/ (dashboard), {base}/api/v1 (API), {base}/docs (OpenAPI); Ctrl-C stops",
          flush=True)
    if source == "VJM_JWT_SECRET":
        return
    token = mint_token(settings.jwt_secret, sub=None, role=SERVICE_ROLE, audience=settings.jwt_audience,
                       ttl_seconds=12 * 3600)
    secret = (f'"$(cat {shlex.quote(str(secret_file))})"' if secret_file is not None
              else shlex.quote(settings.jwt_secret))
    command = f"VJM_JWT_SECRET={secret} {shlex.quote(sys.executable)} -m videojobs.http.token --sub alice"
    if source is None:
        print("vjm up: VJM_JWT_SECRET is not set, so a secret was made up for this run only: every token below "
              "dies with this process. `vjm up --secret-file PATH` keeps one across restarts.", flush=True)
    else:
        print(f"vjm up: the identity secret is in {source}.", flush=True)
    print(f"  service token (12 h): {token}\n  user tokens: {command}", flush=True)
