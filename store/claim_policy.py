"""The claim policy (sql/schema/063_claims.sql): pause and resume claims, cap what processes at once, choose who
takes turns, and read the policy and the history of its changes. Admins change it; every change is recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncpg import Record

from .errors import translate_error
from .executor import Executor
from .queries import fetch_all, fetch_one

CAP_KINDS = ("user", "team", "platform")
FAIR_SHARES = ("user", "team")


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One change of the claim policy, as vjm.queue_settings_history keeps it."""

    seq: int
    changed_at: datetime
    actor: str
    setting: str            # pause, resume, cap, fair_share
    scope: str              # '*', a platform, '<kind>:<key>' (a cap), 'queue' (fair_share)
    value: dict[str, Any]
    reason: str | None


@dataclass(frozen=True, slots=True)
class ClaimPolicy:
    """The claim policy now: who takes turns, the paused platforms ('*': all), the caps."""

    fair_share: str
    pauses: list[dict[str, Any]]
    caps: list[dict[str, Any]]


async def pause_claims(executor: Executor, platform: str | None, actor: str | None,
                       reason: str | None) -> PolicyChange:
    """Stop claims for `platform`, or for every platform (None)."""
    return await _change(executor, "claim_pause", platform=platform, actor=actor, reason=reason)


async def resume_claims(executor: Executor, platform: str | None, actor: str | None,
                        reason: str | None) -> PolicyChange:
    """Claims again for `platform`; None lifts every pause."""
    return await _change(executor, "claim_resume", platform=platform, actor=actor, reason=reason)


async def set_claim_cap(executor: Executor, kind: str, key: str, max_processing: int | None, actor: str | None,
                        reason: str | None) -> PolicyChange:
    """At most `max_processing` jobs processing at once under one user, team or platform (key '*': each one
    without its own cap); None removes the cap."""
    return await _change(executor, "claim_set_cap", kind=kind, key=key, max_processing=max_processing,
                         actor=actor, reason=reason)


async def set_fair_share(executor: Executor, fair_share: str, actor: str | None, reason: str | None) -> PolicyChange:
    """Who takes turns within a priority from now on: 'user' or 'team'."""
    return await _change(executor, "claim_set_fair_share", fair_share=fair_share, actor=actor, reason=reason)


async def get_claim_policy(executor: Executor) -> ClaimPolicy:
    """The policy now."""
    try:
        row = await fetch_one(executor, "claim_policy_settings")
    except Exception as exc:
        raise translate_error(exc) from exc
    assert row is not None  # one settings row, always
    return ClaimPolicy(fair_share=row["fair_share"], pauses=_json(row["pauses"]), caps=_json(row["caps"]))


async def get_policy_history(executor: Executor, limit: int) -> list[PolicyChange]:
    """The newest `limit` changes, newest first."""
    try:
        rows = await fetch_all(executor, "claim_policy_history", limit=limit)
    except Exception as exc:
        raise translate_error(exc) from exc
    return [_policy_change(row) for row in rows]


async def _change(executor: Executor, query: str, **params: Any) -> PolicyChange:
    try:
        row = await fetch_one(executor, query, **params)
    except Exception as exc:
        raise translate_error(exc) from exc
    assert row is not None  # the setters return the change they recorded
    return _policy_change(row)


def _policy_change(row: Record) -> PolicyChange:
    return PolicyChange(seq=row["seq"], changed_at=row["changed_at"], actor=row["actor"], setting=row["setting"],
                        scope=row["scope"], value=_json(row["value"]), reason=row["reason"])


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
