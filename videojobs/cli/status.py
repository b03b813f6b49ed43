"""`vjm status`: which process leads the projector and since when, which stand by, how far the projection is
behind the log, and the sessions on the database by application_name (for a deployment of many processes)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import JustifyMethod
from rich.table import Table

from ..manager import DeploymentStatus
from .render import make_console, when
from .session import add_database_option, add_json_option, open_manager, print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `status` command."""
    parser = sub.add_parser("status", help="who leads the projector, who stands by, the lag, who is connected",
                            description="Which process leads the projector (its host:pid, server pid, "
                                        "application_name and client address, since when), the standby "
                                        "candidates that take over when it goes, how far the projection is "
                                        "behind the log, and the sessions on the database by application_name. "
                                        "The lease and the candidates need a login that may act as vjm_admin. "
                                        "Exit 1 when no projector leads or it is stopped at an event.")
    add_database_option(parser)
    add_json_option(parser)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Print the status; exit 1 when nothing leads the projector (as far as this role can see) or it is stopped."""
    async with open_manager(args) as manager:
        status = await manager.maintenance.deployment_status()
    problem = status.projection.fault is not None or (status.leader is not None and not status.leader.live)
    if args.json:
        print_json(as_json(status))
    else:
        _print(status)
    return 1 if problem else 0


def as_json(status: DeploymentStatus) -> dict[str, Any]:
    """The status as one JSON document (what `--json` prints)."""
    projection, leader = status.projection, status.leader
    return {
        "projector": projection.name,
        "lease_readable": leader is not None,
        "leader": None if leader is None or not leader.live else {
            "process": leader.process, "backend_pid": leader.backend_pid,
            "application_name": leader.application_name, "client_addr": leader.client_addr,
            "client_port": leader.client_port, "since": when(leader.since, precise=True),
            "leading_seconds": leader.leading_seconds, "renewed_at": when(leader.renewed_at, precise=True),
            "expires_at": when(leader.expires_at, precise=True)},
        "lag": {"events_behind": projection.events_behind, "seconds_behind": projection.seconds_behind,
                "held_events": projection.horizon.held_events if projection.horizon else 0,
                "checkpoint": {"xact_id": projection.cursor[0], "position": projection.cursor[1]},
                "events_applied": projection.events, "change_seq": projection.change_seq,
                "stopped_at": projection.fault.position if projection.fault else None},
        "candidates": None if status.candidates is None else [
            {"process": c.process, "backend_pid": c.backend_pid, "application_name": c.application_name,
             "client_addr": c.client_addr, "client_port": c.client_port,
             "role": "leader" if c.leading else "standby", "checked_in_seconds_ago": round(c.seen_seconds_ago, 3)}
            for c in status.candidates],
        "standbys": None if status.candidates is None else len(status.standbys),
        "sessions": [{"application_name": s.application_name, "sessions": s.sessions, "pids": s.pids}
                     for s in status.sessions],
    }


def _print(status: DeploymentStatus) -> None:
    projection, leader = status.projection, status.leader
    console = make_console()
    if leader is None:
        console.print(f"projector {projection.name}: the lease is not readable by this login (vjm_admin reads it)")
    elif leader.live:
        console.print(f"projector {projection.name}: led by {leader.process or '?'} (server pid {leader.backend_pid}, "
                      f"{leader.application_name or '-'}, {_address(leader.client_addr, leader.client_port)}) "
                      f"since {when(leader.since)} ({leader.leading_seconds or 0:.1f} s); lease expires "
                      f"{when(leader.expires_at)}")
    else:
        console.print(f"projector {projection.name}: NO LEADER (a standby takes the lease within its takeover "
                      "interval; none runs unless `vjm up` or `vjm listen` does)")
    stopped = f"; STOPPED at event {projection.fault.position}" if projection.fault else ""
    console.print(f"lag: {projection.events_behind} events behind the log ({projection.seconds_behind:.1f} s); "
                  f"checkpoint at position {projection.cursor[1]}, {projection.events} events applied, change "
                  f"feed at seq {projection.change_seq}{stopped} (one projection: every process serves it)")
    if status.candidates:
        console.print(_candidates(status))
    elif status.candidates is not None:
        console.print("projector candidates: none connected")
    console.print(_sessions(status))


def _candidates(status: DeploymentStatus) -> Table:
    standbys = len(status.standbys)
    counts = ("1 leader, " if any(c.leading for c in status.candidates or []) else "no leader, ") + \
        f"{standbys} {'standby' if standbys == 1 else 'standbys'}"
    table = Table(title=f"projector candidates: {counts}", title_justify="left")
    for column in ("process", "role", "server pid", "application_name", "client", "checked in"):
        table.add_column(column, no_wrap=True)
    for c in status.candidates or []:
        table.add_row(c.process or "?", "leader" if c.leading else "standby", str(c.backend_pid),
                      c.application_name or "-", _address(c.client_addr, c.client_port), f"{c.seen_seconds_ago:.1f} s ago")
    return table


def _sessions(status: DeploymentStatus) -> Table:
    total = sum(group.sessions for group in status.sessions)
    table = Table(title=f"sessions on this database: {total}", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("application_name", "left"), ("sessions", "right"), ("server pids", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for group in status.sessions:
        table.add_row(group.application_name or "(none)", str(group.sessions), " ".join(map(str, group.pids)))
    return table


def _address(addr: str | None, port: int | None) -> str:
    if addr is None:
        return "local socket"
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
