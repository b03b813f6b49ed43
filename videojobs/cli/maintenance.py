"""`vjm maintenance reset-stuck`: time out processing jobs that stopped showing activity."""

from __future__ import annotations

import argparse

from .session import add_database_option, add_json_option, open_manager, parse_duration, print_json, require


def register(sub: argparse._SubParsersAction) -> None:
    """Add `maintenance reset-stuck`."""
    parser = sub.add_parser("maintenance", help="operator tasks (reset stuck jobs)",
                            description="Operator tasks. Every change goes through the state machine.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    reset = actions.add_parser("reset-stuck", help="time out processing jobs idle for longer than --older-than",
                               description="Append `time_out` for every processing job with no activity for "
                                           "longer than --older-than: re-queued while it has attempts left, "
                                           "failed otherwise. The worker holding the old attempt is fenced off.")
    reset.add_argument("--older-than", type=parse_duration, default=parse_duration("15m"), metavar="DURATION",
                       help="idle time, e.g. 30s, 15m, 2h (default 15m)")
    add_database_option(reset)
    add_json_option(reset)
    reset.set_defaults(handler=run_reset_stuck)


async def run_reset_stuck(args: argparse.Namespace) -> int:
    """Reset stuck jobs once and report the counts."""
    seconds = args.older_than.total_seconds()
    require(0 <= seconds <= 7 * 86400, "--older-than must be between 0 seconds and 7 days", "older_than")
    async with open_manager(args) as manager:
        result = await manager.maintenance.reset_stuck_jobs(args.older_than)
    if args.json:
        print_json({"found": result.found, "requeued": result.requeued, "failed": result.failed,
                    "skipped": result.skipped, "reset": result.reset})
    else:
        print(f"stuck jobs idle > {seconds:g}s: found {result.found}, re-queued {result.requeued}, "
              f"failed (no attempts left) {result.failed}, skipped {result.skipped}")
    return 0
