"""`vjm up`: the HTTP API, the web dashboard, the projector and the stuck detector in one process."""

from __future__ import annotations

import argparse

from .session import add_database_option, open_manager, settings_of


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `up` command."""
    parser = sub.add_parser("up", help="serve the HTTP API and dashboard, with the projector and stuck detector",
                            description="Migrate, then serve the HTTP API and the web dashboard (at /) with "
                                        "uvicorn, and run the projector and stuck-job detector in the same "
                                        "process. Postgres: --database-url, VJM_DATABASE_URL, else the "
                                        "embedded server in VJM_DATA_DIR (kept across runs).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--stuck-timeout", type=float, metavar="SECONDS",
                        help="reset processing jobs idle this long (default VJM_STUCK_TIMEOUT_SECONDS or 900)")
    add_database_option(parser)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    settings = settings_of(args, stuck_timeout_seconds=args.stuck_timeout)
    async with open_manager(args, listeners=True, settings=settings):
        raise NotImplementedError("waiting for videojobs.http.create_app")
