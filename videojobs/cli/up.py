"""`vjm up`: the HTTP API, the web dashboard, the projector and the stuck detector in one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
from collections.abc import Iterator

import uvicorn

from .session import add_database_option, open_manager, settings_of, shutdown_event


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `up` command."""
    parser = sub.add_parser("up", help="serve the HTTP API and dashboard, with the projector and stuck detector",
                            description="Migrate, then serve the HTTP API and the web dashboard (at /) with "
                                        "uvicorn, and run the projector and stuck-job detector in the same "
                                        "process, until Ctrl-C or SIGTERM. Postgres: --database-url, "
                                        "VJM_DATABASE_URL, else the embedded server in VJM_DATA_DIR (kept "
                                        "across runs). Without VJM_JWT_SECRET a secret is made up for this run.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port, 0 for any free one (default 8000)")
    parser.add_argument("--stuck-timeout", type=float, metavar="SECONDS",
                        help="reset processing jobs idle this long (default VJM_STUCK_TIMEOUT_SECONDS or 900)")
    add_database_option(parser)
    parser.set_defaults(handler=run)


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

    settings = settings_of(args, stuck_timeout_seconds=args.stuck_timeout)
    generated = settings.jwt_secret is None
    if generated:
        settings = settings.model_copy(update={"jwt_secret": secrets.token_urlsafe(32)})
    stop = shutdown_event()
    async with open_manager(args, listeners=True, settings=settings) as manager:
        app = create_app(manager, settings=settings)
        server = Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on"))
        serving = asyncio.create_task(server.serve())
        if await _started(server, serving):
            _announce(server, settings, generated)
            await asyncio.wait({serving, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
            print("vjm up: stopping ...", flush=True)
            # Open event streams first: uvicorn waits for every response to end before it stops.
            await app.state.vjm.close_feed_hub()
            server.should_exit = True
        await serving
        if not server.started:
            print(f"error: could not serve on {args.host}:{args.port} (is the port in use?)", flush=True)
            return 1
    print("vjm up: stopped", flush=True)
    return 0


async def _started(server: Server, serving: asyncio.Task) -> bool:
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({ready, serving}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    return server.started


def _announce(server: Server, settings, generated: bool) -> None:
    from ..http.auth import SERVICE_ROLE, mint_token

    host, port = server.servers[0].sockets[0].getsockname()[:2]
    base = f"http://{host}:{port}"
    print(f"vjm up: serving {base}/ (dashboard), {base}/api/v1 (API), {base}/docs (OpenAPI); Ctrl-C stops",
          flush=True)
    if generated:
        token = mint_token(settings.jwt_secret, sub=None, role=SERVICE_ROLE, audience=settings.jwt_audience,
                           ttl_seconds=12 * 3600)
        print("vjm up: VJM_JWT_SECRET is not set, so a secret was made up for this run only.\n"
              f"  service token (12 h): {token}\n"
              f"  user tokens: VJM_JWT_SECRET={settings.jwt_secret} python -m videojobs.http.token --sub alice",
              flush=True)
