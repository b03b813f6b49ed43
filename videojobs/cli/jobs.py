"""`vjm jobs`: list, show and audit jobs; cancel, retry or delete many with a progress bar."""

from __future__ import annotations

import argparse
from datetime import datetime

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import VJMError
from ..manager import VideoJobManager
from ..models import JOB_STATUSES, EnhancementLevel, Platform, QualityPreset
from .render import history_table, job_details, job_table, make_console
from .session import (
    add_as_user_option,
    add_database_option,
    add_json_option,
    open_manager,
    print_json,
    require,
    warn_if_behind,
)

BULK_ACTIONS = {"cancel": "cancel_job", "retry": "retry_job", "delete": "delete_job"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add `jobs list|show|history|cancel|retry|delete`."""
    parser = sub.add_parser("jobs", help="list, show and audit jobs; cancel, retry or delete many",
                            description="Read jobs from the projection and their history from the event log.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _register_list(actions)
    for name, handler, text in (("show", run_show, "one job's current state"),
                                ("history", run_history, "one job's events, oldest first (the audit trail)")):
        one = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        one.add_argument("job_id", help="the job's id (UUID)")
        if name == "show":
            one.add_argument("--as-of", type=datetime.fromisoformat, metavar="ISO_TIME",
                             help="the job as it was at this instant (replayed from its events)")
        _common(one)
        one.set_defaults(handler=handler)
    for name in BULK_ACTIONS:
        _register_bulk(actions, name)


def _common(parser: argparse.ArgumentParser) -> None:
    add_database_option(parser)
    add_as_user_option(parser)
    add_json_option(parser)


def _register_list(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser("list", help="jobs, newest first, with filters",
                                description="Jobs, newest first. Filters combine; --cursor pages by keyset.")
    parser.add_argument("--user", help="only this user's jobs")
    parser.add_argument("--team", help="only this team's jobs (team id)")
    parser.add_argument("--status", action="append", choices=[s.value for s in JOB_STATUSES],
                        help="only jobs in this status (repeatable)")
    parser.add_argument("--platform", choices=[p.value for p in Platform])
    parser.add_argument("--preset", choices=[p.value for p in QualityPreset])
    parser.add_argument("--enhancement", choices=[e.value for e in EnhancementLevel])
    parser.add_argument("--since", help="created on or after this date/instant (ISO 8601)")
    parser.add_argument("--until", help="created on or before this date/instant (ISO 8601)")
    parser.add_argument("--scheduled", action="store_true", help="only queued jobs whose run_at is still ahead")
    parser.add_argument("--limit", type=int, default=50, help="page size, 1-500 (default 50)")
    parser.add_argument("--offset", type=int, default=0, help="skip this many jobs")
    parser.add_argument("--cursor", help="next_cursor of the previous page")
    _common(parser)
    parser.set_defaults(handler=run_list)


def _register_bulk(actions: argparse._SubParsersAction, name: str) -> None:
    parser = actions.add_parser(name, help=f"{name} jobs by id or by status, with a progress bar",
                                description=f"{name.capitalize()} each job given (or every visible job in "
                                            f"--status); reports a result per job.")
    parser.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    parser.add_argument("--status", choices=[s.value for s in JOB_STATUSES],
                        help="select every visible job in this status")
    parser.add_argument("--reason", help="recorded in each event")
    _common(parser)
    parser.set_defaults(handler=run_bulk, bulk=name)


def _filters(args: argparse.Namespace) -> dict:
    values = {"status": args.status, "platform_target": args.platform, "quality_preset": args.preset,
              "enhancement_level": args.enhancement, "date_from": args.since, "date_to": args.until,
              "scheduled": args.scheduled}
    return {key: value for key, value in values.items() if value is not None}


async def run_list(args: argparse.Namespace) -> int:
    """Print one page of jobs."""
    require(not (args.user and args.team), "give --user or --team, not both", "team")
    async with open_manager(args) as manager:
        kwargs = dict(limit=args.limit, offset=args.offset, filters=_filters(args), cursor=args.cursor)
        if args.user:
            page = await manager.get_user_jobs(args.user, **kwargs)
        elif args.team:
            page = await manager.get_team_jobs(args.team, **kwargs)
        else:
            page = await manager.list_jobs(**kwargs)
        await warn_if_behind(manager)
    if args.json:
        print_json(page)
        return 0
    console = make_console()
    console.print(job_table(page.items, title=f"{page.total} job(s); showing {len(page.items)} from {page.offset}"))
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")
    return 0


async def run_show(args: argparse.Namespace) -> int:
    """Print one job."""
    async with open_manager(args) as manager:
        job = await (manager.audit.job_as_of(args.job_id, args.as_of) if args.as_of
                     else manager.get_job_by_id(args.job_id))
    if args.json:
        print_json(job)
    else:
        make_console().print(job_details(job))
    return 0


async def run_history(args: argparse.Namespace) -> int:
    """Print one job's events."""
    async with open_manager(args) as manager:
        events = await manager.get_job_history(args.job_id)
    if args.json:
        print_json(events)
    else:
        make_console().print(history_table(events, title=f"history of job {args.job_id}"))
    return 0


async def run_bulk(args: argparse.Namespace) -> int:
    """Apply one action to many jobs; exit 1 when any of them was refused."""
    require(bool(args.job_ids) != bool(args.status), "give job ids or --status (one of them)", "job_ids")
    async with open_manager(args) as manager:
        ids = list(args.job_ids) or await _ids_in_status(manager, args.status)
        results = await _apply_all(manager, args, ids)
    failures = [r for r in results if not r["ok"]]
    if args.json:
        print_json({"action": args.bulk, "total": len(results), "failed": len(failures), "results": results})
    else:
        for failure in failures:
            print(f"  {failure['job_id']}: {failure['error']}")
        print(f"{args.bulk}: {len(results) - len(failures)} of {len(results)} job(s) done, {len(failures)} refused")
    return 1 if failures else 0


async def _ids_in_status(manager: VideoJobManager, status: str) -> list[str]:
    ids, cursor = [], None
    while True:
        page = await manager.list_jobs(limit=500, filters={"status": status}, cursor=cursor)
        ids += [str(job.job_id) for job in page.items]
        if not page.next_cursor:
            return ids
        cursor = page.next_cursor


async def _apply_all(manager: VideoJobManager, args: argparse.Namespace, ids: list[str]) -> list[dict]:
    operation = getattr(manager, BULK_ACTIONS[args.bulk])
    results = []
    columns = (TextColumn(f"{args.bulk}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=make_console(), disable=args.json or not ids, transient=True) as progress:
        task = progress.add_task(args.bulk, total=len(ids))
        for job_id in ids:
            try:
                await operation(job_id, args.reason)
                results.append({"job_id": job_id, "ok": True, "error": None})
            except VJMError as exc:
                results.append({"job_id": job_id, "ok": False, "error": str(exc)})
            progress.advance(task)
    return results
