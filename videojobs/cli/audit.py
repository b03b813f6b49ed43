"""`vjm audit verify`: recompute the tamper-evidence hash chain of the event log."""

from __future__ import annotations

import argparse

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .render import make_console
from .session import add_database_option, add_json_option, open_manager, print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add `audit verify`."""
    parser = sub.add_parser("audit", help="verify the event log's hash chain",
                            description="Auditor tools over the append-only event log.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="recompute the hash chain (exit 1 when a link is broken)",
                                description="Recompute every event's hash from its content and its "
                                            "predecessor's hash. Exit code 1 at the first broken link.")
    verify.add_argument("--job", metavar="JOB_ID", help="verify one job's chain only")
    add_database_option(verify)
    add_json_option(verify)
    verify.set_defaults(handler=run_verify)


async def run_verify(args: argparse.Namespace) -> int:
    """Verify the chain; exit 1 when it is broken."""
    async with open_manager(args) as manager:
        columns = (SpinnerColumn(), TextColumn("recomputing the hash chain"), TimeElapsedColumn())
        with Progress(*columns, console=make_console(), transient=True, disable=args.json or not make_console().is_terminal) as progress:
            progress.add_task("audit", total=None)
            report = await manager.verify_history(args.job)
    if args.json:
        print_json(report)
    elif report.ok:
        print(f"audit chain verified: ok ({report.checked} events checked, 0 broken links)")
    else:
        print(f"audit chain BROKEN at job {report.first_broken_job_id} version {report.first_broken_version}: "
              f"{report.reason} ({report.checked} events checked)")
    return 0 if report.ok else 1
