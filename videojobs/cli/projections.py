"""`vjm projections rebuild|verify`: replay the event log into the read models, or check them against it."""

from __future__ import annotations

import argparse

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from listeners import rebuild_projections, verify_projections

from ..database import provide_database
from .render import make_console
from .session import add_database_option, add_json_option, print_json, probe_database, settings_of


def register(sub: argparse._SubParsersAction) -> None:
    """Add `projections rebuild|verify`."""
    parser = sub.add_parser("projections", help="rebuild or verify the read models (vjm.jobs, vjm.job_stats)",
                            description="The read models are a pure function of the event log: rebuild "
                                        "replays it into them, verify compares them with a replay.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rebuild = actions.add_parser("rebuild", help="replay every event into fresh tables and swap them in",
                                 description="Replay every event into shadow tables and swap them in; "
                                             "readers are never blocked.")
    verify = actions.add_parser("verify", help="compare the read models with a replay (exit 1 on differences)",
                                description="Compare vjm.jobs with a replay of the events and the stats "
                                            "with a recount. Exit code 1 when anything differs.")
    verify.add_argument("--limit", type=int, default=20, help="show at most this many differences (default 20)")
    for parser_, handler in ((rebuild, run_rebuild), (verify, run_verify)):
        add_database_option(parser_)
        add_json_option(parser_)
        parser_.set_defaults(handler=handler)


def _spinner(text: str, quiet: bool) -> Progress:
    columns = (SpinnerColumn(), TextColumn(text), TimeElapsedColumn())
    return Progress(*columns, console=make_console(), transient=True, disable=quiet or not make_console().is_terminal)


async def run_rebuild(args: argparse.Namespace) -> int:
    """Rebuild and report what changed."""
    settings = settings_of(args)
    if settings.database_url:
        await probe_database(settings.database_url)
    async with provide_database(settings) as url:
        with _spinner("replaying every event into shadow tables", args.json) as progress:
            progress.add_task("rebuild", total=None)
            result = await rebuild_projections(url)
    if args.json:
        print_json({"events": result.events, "jobs": result.jobs, "seconds": result.seconds,
                    "events_per_second": result.events_per_second, "changed": result.changed})
        return 0
    changed = ", ".join(f"{k} {v}" for k, v in result.changed.items() if v) or "nothing"
    print(f"rebuilt: {result.events} events replayed into {result.jobs} jobs in {result.seconds:.2f}s "
          f"({result.events_per_second:,.0f} events/s); rows changed: {changed}")
    return 0


async def run_verify(args: argparse.Namespace) -> int:
    """Verify; exit 1 when the read models differ from the replay."""
    settings = settings_of(args)
    if settings.database_url:
        await probe_database(settings.database_url)
    async with provide_database(settings) as url:
        with _spinner("comparing the read models with a replay", args.json) as progress:
            progress.add_task("verify", total=None)
            result = await verify_projections(url, limit=args.limit)
    if args.json:
        print_json({"ok": result.ok, "events": result.events, "jobs": result.jobs,
                    "differences": [d.model_dump(mode="json") for d in result.differences]})
        return result.exit_code
    for difference in result.differences:
        columns = f" ({', '.join(difference.columns)})" if difference.columns else ""
        print(f"  {difference.table} {difference.key}: {difference.kind}{columns}")
    verdict = "ok" if result.ok else "DIFFERENCES FOUND"
    print(f"projections verified against a replay of {result.events} events ({result.jobs} jobs): "
          f"{verdict} ({len(result.differences)} differences)")
    return result.exit_code
