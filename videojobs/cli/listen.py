"""`vjm listen`: the projector and the stuck-job detector as a long-running service."""

from __future__ import annotations

import argparse

from .session import add_database_option, open_manager, settings_of, shutdown_event


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `listen` command."""
    parser = sub.add_parser("listen", help="run the projector and the stuck-job detector until stopped",
                            description="Run the projector (leader-elected: several may run, one applies) "
                                        "and the stuck-job detector until Ctrl-C or SIGTERM.")
    parser.add_argument("--stuck-timeout", type=float, metavar="SECONDS",
                        help="reset processing jobs idle this long (default VJM_STUCK_TIMEOUT_SECONDS or 900)")
    add_database_option(parser)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Start both listeners, wait for a signal, stop them."""
    settings = settings_of(args, stuck_timeout_seconds=args.stuck_timeout)
    stop = shutdown_event()
    async with open_manager(args, listeners=True, settings=settings):
        print(f"vjm listen: projector and stuck detector running (stuck after "
              f"{settings.stuck_timeout_seconds:g}s); Ctrl-C or SIGTERM stops", flush=True)
        await stop.wait()
        print("vjm listen: stopping", flush=True)
    print("vjm listen: stopped", flush=True)
    return 0
