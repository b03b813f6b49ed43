"""`vjm stats`: counters by status, processing times, platforms and the daily series; `--waits`: how long
jobs waited to be claimed (claim latency per platform, from the log)."""

from __future__ import annotations

import argparse

from ..manager import VideoJobManager
from .render import claim_latency_table, make_console, stats_renderable
from .session import (
    add_as_user_option,
    add_database_option,
    add_json_option,
    open_manager,
    print_json,
    require,
    warn_if_behind,
)

DEFAULT_HOURS = 24


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `stats` command."""
    parser = sub.add_parser("stats", help="job statistics (from the incrementally kept counters)",
                            description="Counters by status, processing times, a platform breakdown and a "
                                        "daily series, for everything visible, one user or one team. With "
                                        "--waits: how long jobs waited to be claimed, per platform.")
    parser.add_argument("--user", help="only this user's jobs")
    parser.add_argument("--team", help="only this team's jobs (team id)")
    parser.add_argument("--days", type=int, default=30, help="length of the daily series, 1-366 (default 30)")
    parser.add_argument("--waits", action="store_true",
                        help="claim latency instead: per platform, how many jobs were claimed and the median, "
                             "95th percentile and longest wait in seconds (from the log)")
    parser.add_argument("--hours", type=int, default=None,
                        help=f"with --waits: the window, starts of the last 1-720 hours (default {DEFAULT_HOURS})")
    add_database_option(parser)
    add_as_user_option(parser)
    add_json_option(parser)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Print the statistics (or, with --waits, the claim latency)."""
    require(not (args.user and args.team), "give --user or --team, not both", "team")
    require(args.waits or args.hours is None, "--hours goes with --waits", "hours")
    async with open_manager(args) as manager:
        if args.waits:
            await _print_waits(manager, args)
            return 0
        stats = await manager.get_job_stats(user_id=args.user, team_id=args.team, days=args.days)
        await warn_if_behind(manager)
    if args.json:
        print(stats.model_dump_json(indent=2))
    else:
        make_console().print(stats_renderable(stats))
    return 0


async def _print_waits(manager: VideoJobManager, args: argparse.Namespace) -> None:
    """The claim latency per platform, as JSON or a table (read from the log: never behind)."""
    hours = DEFAULT_HOURS if args.hours is None else args.hours
    rows = await manager.get_claim_latency(hours=hours, user_id=args.user, team_id=args.team)
    if args.json:
        print_json(rows)
    else:
        make_console().print(claim_latency_table(rows, hours))
