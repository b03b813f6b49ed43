"""`vjm watch`: a live terminal dashboard over the change feed (woken by NOTIFY vjm_jobs).

It reads the durable change feed (vjm.job_changes) after the position it started
at, so nothing is missed between notifications; with --as, the database (RLS)
decides what is visible. Off a terminal it prints one plain line per change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from ..errors import JobNotFound
from ..manager import VideoJobManager
from ..models import JOB_STATUSES, Job, JobChange, JobStats
from .render import counters_table, job_table, make_console, short_id
from .session import add_as_user_option, add_database_option, open_manager, require, settings_of, shutdown_event
from .watch_all import OperatorView, watch_all


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `watch` command."""
    parser = sub.add_parser("watch", help="live terminal dashboard of job changes",
                            description=__doc__)
    parser.add_argument("--all", action="store_true",
                        help="the operator's screen: every tenant's counters, the run queue, projection lag, workers "
                             "and stuck jobs (a service's or an admin's database access; not with --as/--user/--team)")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                        help="with --all: redraw at least this often (default 2)")
    parser.add_argument("--user", help="only this user's jobs")
    parser.add_argument("--team", help="only this team's jobs (team id)")
    parser.add_argument("--status", action="append", choices=[s.value for s in JOB_STATUSES],
                        help="only jobs in this status (repeatable)")
    parser.add_argument("--rows", type=int, default=20, help="jobs shown in the table (default 20)")
    parser.add_argument("--max-changes", type=int, metavar="N", help="exit after N changes (for scripts)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="exit after this many seconds")
    add_database_option(parser)
    add_as_user_option(parser)
    parser.set_defaults(handler=run)


class WatchState:
    """What the dashboard shows: recent jobs, counters, the last changes."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.jobs: dict[str, Job] = {}
        self.stats: JobStats | None = None
        self.changes: list[str] = []
        self.seen = 0

    def matches(self, change: JobChange) -> bool:
        """Does a change pass the --user/--team/--status filters?"""
        args = self.args
        return ((not args.user or change.user_id == args.user)
                and (not args.team or str(change.team_id) == args.team)
                and (not args.status or change.status in args.status or change.status == "deleted"))

    def render(self) -> Group:
        """The live screen."""
        shown = sorted(self.jobs.values(), key=lambda j: j.last_activity_at, reverse=True)[: self.args.rows]
        header = Text(f"vjm watch · {self.seen} change(s) · {datetime.now(UTC):%H:%M:%S} UTC · "
                      f"Ctrl-C to stop", style="bold")
        parts: list[RenderableType] = [header]
        if self.stats is not None:
            parts.append(counters_table(self.stats))
        parts.append(job_table(shown, title="recently changed jobs", full_ids=False))
        parts.append(Text("\n".join(self.changes[-8:]) or "waiting for changes ..."))
        return Group(*parts)


async def run(args: argparse.Namespace) -> int:
    """Show the dashboard until Ctrl-C, --duration or --max-changes."""
    require(not (args.user and args.team), "give --user or --team, not both", "team")
    require(args.rows >= 1 and (args.max_changes is None or args.max_changes >= 1),
            "--rows and --max-changes must be positive", "rows")
    if args.all:
        return await _run_all(args)
    stop = shutdown_event()
    console = make_console()
    state = WatchState(args)
    async with open_manager(args) as manager:
        await _load(manager, state)
        after = await _current_seq(manager)
        live = Live(state.render(), console=console, refresh_per_second=4) if console.is_terminal else None
        if live is None:
            print(f"vjm watch: watching job changes after #{after} (Ctrl-C to stop)", flush=True)
        with live or contextlib.nullcontext():
            await _follow(manager, state, after, stop, live)
    return 0


async def _run_all(args: argparse.Namespace) -> int:
    """`--all`: the operator's screen (watch_all.py) until Ctrl-C or --duration."""
    require(not (args.user or args.team or args.as_user or args.status or args.max_changes),
            "--all shows every tenant: it takes no --as, --user, --team, --status or --max-changes", "all")
    require(0.1 <= args.interval <= 3600, "--interval must be between 0.1 and 3600 seconds", "interval")
    stop, console = shutdown_event(), make_console()
    view = OperatorView(stuck_timeout=settings_of(args).stuck_timeout_seconds)
    deadline = time.monotonic() + args.duration if args.duration else None
    async with open_manager(args) as manager:
        after = await _current_seq(manager)
        live = Live(view.render(), console=console, refresh_per_second=4) if console.is_terminal else None
        if live is None:
            print(f"vjm watch: the operator's screen, every tenant, changes after #{after} (Ctrl-C to stop)",
                  flush=True)
        with live or contextlib.nullcontext():
            await watch_all(manager, view, after=after, interval=args.interval, live=live, stop=stop,
                            deadline=deadline)
    return 0


async def _load(manager: VideoJobManager, state: WatchState) -> None:
    args = state.args
    filters = {"status": args.status} if args.status else None
    if args.user:
        page = await manager.get_user_jobs(args.user, limit=args.rows, filters=filters)
    elif args.team:
        page = await manager.get_team_jobs(args.team, limit=args.rows, filters=filters)
    else:
        page = await manager.list_jobs(limit=args.rows, filters=filters)
    state.jobs = {str(job.job_id): job for job in page.items}
    state.stats = await manager.get_job_stats(user_id=args.user, team_id=args.team)


async def _current_seq(manager: VideoJobManager) -> int:
    return await manager.subscriptions.position()


async def _follow(manager: VideoJobManager, state: WatchState, after: int, stop: asyncio.Event,
                  live: Live | None) -> None:
    deadline = time.monotonic() + state.args.duration if state.args.duration else None
    subscription = manager.subscriptions.subscribe(after=after, poll_interval=0.5)
    stopper = asyncio.create_task(_stop_when(stop, deadline, subscription))
    try:
        async for change in subscription:
            if state.matches(change):
                await _apply(manager, state, change, live)
                if state.args.max_changes and state.seen >= state.args.max_changes:
                    break
    finally:
        stopper.cancel()
        await subscription.close()


async def _stop_when(stop: asyncio.Event, deadline: float | None, subscription) -> None:
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    await subscription.close()


async def _apply(manager: VideoJobManager, state: WatchState, change: JobChange, live: Live | None) -> None:
    state.seen += 1
    key = str(change.job_id)
    try:
        state.jobs[key] = await manager.get_job_by_id(change.job_id)
    except JobNotFound:
        state.jobs.pop(key, None)
    line = (f"#{change.seq:<6} job {short_id(change.job_id)} {change.user_id:<10} -> {change.status:<10} "
            f"v{change.version}")
    if live is None:
        print(f"change {line}", flush=True)
        return
    state.changes.append(line)
    state.stats = await manager.get_job_stats(user_id=state.args.user, team_id=state.args.team)
    live.update(state.render())

