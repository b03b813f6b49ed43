"""Entry point: parse arguments, run one command, turn errors into messages and exit codes.

Exit codes: 0 success, 1 the command found a problem (e.g. verification failed),
2 bad arguments or input, 3 database unavailable, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from ..connect import API, CLI, DETECTOR, application_name
from ..errors import DatabaseUnavailable, MigrationError, ValidationError, VJMError
from ..logs import configure_logging
from . import (
    audit,
    demo,
    jobs,
    listen,
    maintenance,
    migrate,
    projections,
    queue,
    stats,
    status,
    teams,
    up,
    watch,
    worker,
)

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
COMMANDS = (up, demo, listen, worker, watch, jobs, teams, stats, status, migrate, projections, maintenance, queue,
            audit)

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
# Each command's application_name (store.application_name): `vjm up` serves the API, `vjm listen`'s pools serve
# the stuck detector; a videojobs.Worker (`vjm worker`, the demo's) names its own connections vjm:worker:<id>.
NAMES = {"up": API, "listen": DETECTOR}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered."""
    parser = argparse.ArgumentParser(prog="vjm", description="vjm, the video job manager.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: VJM_LOG_LEVEL or WARNING)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `vjm` with `argv` and return the exit code (also used as the console script)."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level or "WARNING")
    return execute(args.handler, args)


def execute(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command's handler; its errors become one line on stderr and an exit code."""
    try:
        with application_name(NAMES.get(args.command, CLI)), \
                asyncio.Runner(loop_factory=_server_loop() if args.command == "up" else None) as runner:
            return runner.run(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DatabaseUnavailable as exc:
        print(f"error: database unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (ValidationError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VJMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except OSError as exc:
        print(f"error: cannot reach the database: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except asyncpg.PostgresError as exc:  # last resort: one line, never a traceback
        print(f"error: the database refused: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def _server_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, as uvicorn picks it for an app it runs itself (loop="auto"): `vjm up`
    serves from its own asyncio.run, so without this it would run on asyncio's slower loop (bench/README.md,
    "the HTTP path")."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
