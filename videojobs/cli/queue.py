"""`vjm queue`: the claim policy (sql/schema/063_claims.sql, `manager.queue`). Show it, pause and resume
claims, cap the jobs processing at once per user, team or platform, choose who takes turns, and list the
history of its changes. Changing it takes an admin's login; each change names the operator (cli_principal)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from ..manager.queue import CAP_KINDS, FAIR_SHARES, ClaimPolicy, PolicyChange
from ..models import Platform
from .render import when
from .session import add_database_option, add_json_option, open_manager, print_json

PLATFORMS = tuple(p.value for p in Platform)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `queue show|pause|resume|cap|fair-share|history`."""
    parser = sub.add_parser("queue", help="the claim policy: pauses, caps, fair share, and its history",
                            description="Which queued jobs workers may claim: pause and resume claims (a "
                                        "platform, or all), cap the jobs processing at once per user, team or "
                                        "platform, choose who takes turns. Every change is recorded.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the policy now: fair share, pauses, caps")
    pause = actions.add_parser("pause", help="stop claims for --platform, or for every platform")
    resume = actions.add_parser("resume", help="claims again for --platform, or lift every pause")
    for toggle in (pause, resume):
        toggle.add_argument("--platform", choices=PLATFORMS, help="one platform (default: every platform)")
    cap = actions.add_parser("cap", help="at most MAX jobs processing at once per user, team or platform",
                             description="KEY is a user id, a team id, a platform, or '*' (each one without a "
                                         "cap of its own); MAX 0-1000000, or none to remove the cap.")
    cap.add_argument("kind", metavar="KIND", choices=CAP_KINDS, help="user, team or platform")
    cap.add_argument("key", metavar="KEY", help="a user id, a team id, a platform, or '*'")
    cap.add_argument("max_processing", metavar="MAX|none", type=_cap, help="jobs processing at once, or none")
    fair = actions.add_parser("fair-share", help="who takes turns within a priority: each user or each team")
    fair.add_argument("by", metavar="user|team", choices=FAIR_SHARES)
    history = actions.add_parser("history", help="the changes of the policy, newest first: who, when, what, why")
    history.add_argument("--limit", type=int, default=100, help="at most this many changes, 1-1000 (default 100)")
    for change in (pause, resume, cap, fair):
        change.add_argument("--reason", help="why (kept in the history; 1-500 characters)")
    for one in (show, pause, resume, cap, fair, history):
        add_database_option(one)
        add_json_option(one)
        one.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Run one queue action; print the policy, the change or the history."""
    async with open_manager(args) as manager:
        queue = manager.queue
        result: ClaimPolicy | PolicyChange | list[PolicyChange]
        if args.action == "show":
            result = await queue.policy()
        elif args.action == "history":
            result = await queue.history(args.limit)
        elif args.action in ("pause", "resume"):
            toggle = queue.pause if args.action == "pause" else queue.resume
            result = await toggle(args.platform, args.reason)
        elif args.action == "cap":
            result = await queue.set_cap(args.kind, args.key, args.max_processing, args.reason)
        else:
            result = await queue.set_fair_share(args.by, args.reason)
    if args.json:
        print_json(to_jsonable_python(result))
    elif isinstance(result, ClaimPolicy):
        print("\n".join(_policy_lines(result)))
    else:
        for change in result if isinstance(result, list) else [result]:
            print(_change_line(change))
    return 0


def _cap(text: str) -> int | None:
    """MAX: a number of jobs, or none (remove the cap)."""
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of jobs (or none)") from None


def _policy_lines(policy: ClaimPolicy) -> list[str]:
    lines = [f"fair share: by {policy.fair_share}"]
    lines += [f"paused: {p['platform']} since {when(datetime.fromisoformat(p['paused_at']))} by {p['actor']}{_why(p['reason'])}"
              for p in policy.pauses] or ["paused: nothing"]
    lines += [f"cap: {c['kind']} {c['key']} at most {c['max_processing']} processing" for c in policy.caps] \
        or ["caps: none"]
    return lines


def _change_line(change: PolicyChange) -> str:
    value = " ".join(f"{k}={_plain(v)}" for k, v in change.value.items())
    return (f"#{change.seq} {when(change.changed_at)} {change.actor}: {change.setting} {change.scope}"
            f"{' ' + value if value else ''}{_why(change.reason)}")


def _plain(value: Any) -> str:
    return "none" if value is None else str(value)


def _why(reason: str | None) -> str:
    return f" ({reason})" if reason else ""
