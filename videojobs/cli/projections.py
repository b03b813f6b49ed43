"""`vjm projections rebuild|verify|status|void`: replay the log into the read models, check them, see the
projector's state, and void an event it cannot apply."""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .render import make_console
from .session import add_database_option, add_json_option, open_manager, print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add `projections rebuild|verify|status|void`."""
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
    status = actions.add_parser("status", help="the projector's checkpoint, lag, and the event it is stopped at",
                                description="Where the projector is: checkpoint, events behind, and the event "
                                            "it cannot apply if it is stopped (exit 1 while stopped).")
    void = actions.add_parser("void", help="admins: void an event the projector cannot apply",
                              description="Append a `void` naming the event at POSITION: the read models skip "
                                          "its payload (its state change stands; a voided create hides the "
                                          "job) and the projector goes on. The log keeps both events. Refused "
                                          "for an event already projected.")
    void.add_argument("--position", type=int, required=True, help="the event's position (see `status`)")
    void.add_argument("--reason", required=True, help="why (1-500 characters; stored in the void event)")
    for parser_, handler in ((rebuild, run_rebuild), (verify, run_verify), (status, run_status), (void, run_void)):
        add_database_option(parser_)
        add_json_option(parser_)
        parser_.set_defaults(handler=handler)


def _spinner(text: str, quiet: bool) -> Progress:
    columns = (SpinnerColumn(), TextColumn(text), TimeElapsedColumn())
    return Progress(*columns, console=make_console(), transient=True, disable=quiet or not make_console().is_terminal)


async def run_rebuild(args: argparse.Namespace) -> int:
    """Rebuild and report what changed."""
    async with open_manager(args) as manager:
        with _spinner("replaying every event into shadow tables", args.json) as progress:
            progress.add_task("rebuild", total=None)
            result = await manager.maintenance.rebuild_projections()
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
    async with open_manager(args) as manager:
        with _spinner("comparing the read models with a replay", args.json) as progress:
            progress.add_task("verify", total=None)
            result = await manager.maintenance.verify_projections(limit=args.limit)
    if args.json:
        print_json({"ok": result.ok, "stalled": result.stalled, "events": result.events, "jobs": result.jobs,
                    "behind": result.behind, "projector_live": result.projector_live,
                    "differences": [d.model_dump(mode="json") for d in result.differences]})
        return result.exit_code
    for difference in result.differences:
        columns = f" ({', '.join(difference.columns)})" if difference.columns else ""
        print(f"  {difference.table} {difference.key}: {difference.kind}{columns}")
    verdict = "DIFFERENCES FOUND" if not result.ok else "NOT UP TO DATE" if result.stalled else "ok"
    print(f"projections verified against a replay of {result.events} events ({result.jobs} jobs): "
          f"{verdict} ({len(result.differences)} differences)")
    if result.stalled:
        print(f"{result.behind} event(s) after the checkpoint are not projected and no projector is running: "
              f"start `vjm listen`")
    elif result.behind:
        print(f"{result.behind} event(s) after the checkpoint are being projected")
    return result.exit_code


async def run_status(args: argparse.Namespace) -> int:
    """Show the checkpoint, the lag and the stop; exit 1 while the projector is stopped at an event."""
    async with open_manager(args) as manager:
        status = await manager.maintenance.projection_status()
    if args.json:
        print_json(status)
        return 1 if status.fault else 0
    print(f"projector {status.name}: checkpoint at position {status.cursor[1]} (xact {status.cursor[0]}), "
          f"{status.events} events applied; {status.events_behind} behind ({status.seconds_behind:.1f}s)")
    leader = status.leader
    if leader is not None:
        print(f"  leader: pid {leader['holder_pid']}, lease renewed {leader['renewed_at']}" if leader["live"]
              else "  leader: none live (a standby takes the lease within its takeover interval)")
    if status.horizon is not None:
        _print_horizon(status.horizon)
    fault = status.fault
    if fault is None:
        print("projecting" if status.started else "never ran")
        return 0
    print(f"STOPPED at event {fault.position} (job {fault.job_id} version {fault.version}, {fault.type}) "
          f"since {fault.since.isoformat()}, {fault.attempts} attempts: {fault.error}")
    print(f"  every tenant waits; to skip it: vjm projections void --position {fault.position} --reason '...'")
    return 1


def _print_horizon(horizon: Any) -> None:
    """The open transaction that holds committed events back: who, how long, what to do."""
    from videojobs.http.health import HORIZON_DEGRADED_SECONDS
    state = f", {horizon.blocking_state}" if horizon.blocking_state else ""
    age = (f", transaction open {horizon.blocking_xact_seconds:.0f}s"
           if horizon.blocking_xact_seconds is not None else "")
    who = f"pid {horizon.blocking_pid}{state}{age}" if horizon.blocking_pid is not None else "an open transaction"
    held = "HELD" if horizon.held_seconds >= HORIZON_DEGRADED_SECONDS else "waiting"
    print(f"  horizon {held}: {horizon.held_events} committed events wait behind {who} "
          f"for {horizon.held_seconds:.1f}s (end or terminate that transaction)")


async def run_void(args: argparse.Namespace) -> int:
    """Void one event through the manager (admins)."""
    async with open_manager(args) as manager:
        event = await manager.maintenance.void_event(args.position, args.reason)
    if args.json:
        print_json(event)
        return 0
    print(f"voided event {args.position}: void appended at position {event.position} "
          f"(job {event.job_id} version {event.version}); the projector skips it on its next retry")
    return 0
