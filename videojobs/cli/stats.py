"""`vjm stats`: counters by status, processing times, platforms and the daily series."""

from __future__ import annotations

import argparse

from .render import make_console, stats_renderable
from .session import add_as_user_option, add_database_option, add_json_option, open_manager, require, warn_if_behind


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `stats` command."""
    parser = sub.add_parser("stats", help="job statistics (from the incrementally kept counters)",
                            description="Counters by status, processing times, a platform breakdown and a "
                                        "daily series, for everything visible, one user or one team.")
    parser.add_argument("--user", help="only this user's jobs")
    parser.add_argument("--team", help="only this team's jobs (team id)")
    parser.add_argument("--days", type=int, default=30, help="length of the daily series, 1-366 (default 30)")
    add_database_option(parser)
    add_as_user_option(parser)
    add_json_option(parser)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Print the statistics."""
    require(not (args.user and args.team), "give --user or --team, not both", "team")
    async with open_manager(args) as manager:
        stats = await manager.get_job_stats(user_id=args.user, team_id=args.team, days=args.days)
        await warn_if_behind(manager)
    if args.json:
        print(stats.model_dump_json(indent=2))
    else:
        make_console().print(stats_renderable(stats))
    return 0
