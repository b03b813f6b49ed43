"""The queue service: the claim policy (sql/schema/063_claims.sql). Pause and resume claims for a platform or for
everything, cap the jobs processing at once per user, team or platform, choose who takes turns within a priority,
and read the policy and the history of its changes. Admins change it; every change is recorded with its actor."""

from __future__ import annotations

from uuid import UUID

from statemachine import ValidationError
from statemachine.validation import check_platforms, check_user_id
from store.claim_policy import (
    CAP_KINDS,
    FAIR_SHARES,
    ClaimPolicy,
    PolicyChange,
    get_claim_policy,
    get_policy_history,
    pause_claims,
    resume_claims,
    set_claim_cap,
    set_fair_share,
)

from .session import Session

MAX_REASON = 500
MAX_CAP = 1_000_000


class Queue:
    """pause, resume, set_cap, set_fair_share, policy, history."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def pause(self, platform: str | None = None, reason: str | None = None) -> PolicyChange:
        """Stop claims for `platform`, or for every platform (None). Running jobs run on; nothing is lost."""
        async with self._session.connection() as conn:
            return await pause_claims(conn, _platform(platform), self._actor(), _reason(reason))

    async def resume(self, platform: str | None = None, reason: str | None = None) -> PolicyChange:
        """Claims again for `platform` (paused on its own); None lifts every pause. Idle workers hear of it at once."""
        async with self._session.connection() as conn:
            return await resume_claims(conn, _platform(platform), self._actor(), _reason(reason))

    async def set_cap(self, kind: str, key: str | UUID, max_processing: int | None,
                      reason: str | None = None) -> PolicyChange:
        """At most `max_processing` jobs of one user, team or platform (`kind`) processing at once; `key` names
        it, or is '*' for each one without a cap of its own. None removes the cap. Claims never overshoot it."""
        if kind not in CAP_KINDS:
            raise ValidationError(f"kind must be one of {', '.join(CAP_KINDS)}", field="kind")
        if max_processing is not None and (isinstance(max_processing, bool) or not isinstance(max_processing, int)
                                           or not 0 <= max_processing <= MAX_CAP):
            raise ValidationError(f"max_processing must be an integer from 0 to {MAX_CAP}, or None",
                                  field="max_processing")
        async with self._session.connection() as conn:
            return await set_claim_cap(conn, kind, _cap_key(kind, key), max_processing, self._actor(), _reason(reason))

    async def set_fair_share(self, by: str, reason: str | None = None) -> PolicyChange:
        """Who takes turns within a priority from now on: 'user' (each owner) or 'team' (each team; a job
        without a team counts as its owner's). Jobs queued already keep their turns."""
        if by not in FAIR_SHARES:
            raise ValidationError(f"fair share is by one of {', '.join(FAIR_SHARES)}", field="fair_share")
        async with self._session.connection() as conn:
            return await set_fair_share(conn, by, self._actor(), _reason(reason))

    async def policy(self) -> ClaimPolicy:
        """The claim policy now: who takes turns, the pauses, the caps."""
        async with self._session.connection() as conn:
            return await get_claim_policy(conn)

    async def history(self, limit: int = 100) -> list[PolicyChange]:
        """The newest `limit` (1-1000) changes of the claim policy, newest first: who, when, what, why."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit must be an integer from 1 to 1000", field="limit")
        async with self._session.connection() as conn:
            return await get_policy_history(conn, limit)

    def _actor(self) -> str | None:
        return self._session.actor("queue")


def _platform(platform: str | None) -> str | None:
    names = check_platforms(platform, "platform")
    if names is not None and len(names) != 1:
        raise ValidationError("platform must be one platform, or None for every platform", field="platform")
    return names[0] if names else None


def _cap_key(kind: str, key: str | UUID) -> str:
    if key == "*":
        return "*"
    if kind == "user":
        return check_user_id(key, "key")
    if kind == "team":
        try:
            return str(key if isinstance(key, UUID) else UUID(str(key)))
        except ValueError:
            raise ValidationError("a team cap names a team id (a UUID) or '*'", field="key") from None
    return str(_platform(str(key)))


def _reason(reason: str | None) -> str | None:
    if reason is not None and (not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON):
        raise ValidationError(f"reason must be 1-{MAX_REASON} characters", field="reason")
    return reason
