"""The claim policy's bodies (sql/schema/063_claims.sql, `manager.queue`): pause and resume claims, cap what
processes at once, choose who takes turns; the policy and its history as the admin endpoints answer them.

Each body admits exactly what `manager.queue` and the database accept, so that a document-valid body is
never refused: a cap's `key` is typed by its `kind` (a user id, a team id, a platform, or '*'), and a
reason is 1-500 characters, not blank (Python's `str.strip`, which the manager asks), without NUL.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, WrapValidator
from pydantic import ValidationError as PydanticError
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from videojobs.manager.queue import MAX_CAP, MAX_REASON, ClaimPolicy, PolicyChange
from videojobs.models import Platform

from .schemas import Body, UserId

# The characters Python's str.isspace() takes for white space (what str.strip() removes).
_PY_SPACES = "\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029" \
             "\\u202f\\u205f\\u3000"
REASON_PATTERN = f"^(?![{_PY_SPACES}]*$)[^\\u0000]*$"
# What PostgreSQL text cannot hold: NUL, and lone surrogates (which JSON text in UTF-8 cannot carry, so the
# pattern leaves them out; a JSON escape can still spell one, and it is refused all the same).
_TEXT_REFUSED = re.compile(r"[\u0000\ud800-\udfff]")


def _reason(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if _TEXT_REFUSED.search(value):
        raise ValueError("must not contain NUL characters or lone surrogates")
    return value


def _one_of(message: str) -> WrapValidator:
    """One error naming what the field takes, instead of one per member of its union."""
    def wrap(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except PydanticError:
            raise ValueError(message) from None
    return WrapValidator(wrap)


QueueReason = Annotated[str, Field(min_length=1, max_length=MAX_REASON, description="Why (kept in the history)",
                                   json_schema_extra={"pattern": REASON_PATTERN}), AfterValidator(_reason)]
MaxProcessing = Annotated[int, Field(strict=True, ge=0, le=MAX_CAP)]


class PauseRequest(Body):
    """Stop claims for one platform, or (no platform) for every platform. Running jobs run on."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"platform": "tiktok", "reason": "encoder pool upgrade"}]})

    platform: Platform | None = Field(None, description="The platform; null: every platform")
    reason: QueueReason | None = None


class ResumeRequest(PauseRequest):
    """Claims again for one platform (paused on its own), or (no platform) lift every pause."""


class _Cap(Body):
    max_processing: MaxProcessing | None = Field(description="At most this many jobs processing at once "
                                                             "(0 to 1,000,000); null removes the cap")
    reason: QueueReason | None = None


class UserCap(_Cap):
    """At most `max_processing` jobs of one user processing at once ('*': each user without a cap of their own)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "user", "key": "*", "max_processing": 4, "reason": "fair use"}]})

    kind: Literal["user"]
    key: UserId = Field(description="A user id, or '*'")


class TeamCap(_Cap):
    """At most `max_processing` jobs of one team processing at once ('*': each team without a cap of its own)."""

    kind: Literal["team"]
    key: Annotated[UUID | Literal["*"], _one_of("must be a team id (a UUID) or '*'")] = Field(
        description="A team id, or '*'")


class PlatformCap(_Cap):
    """At most `max_processing` jobs of one platform processing at once (an encoder pool's capacity; '*': each
    platform without a cap of its own)."""

    kind: Literal["platform"]
    key: Annotated[Platform | Literal["*"], _one_of(f"must be one of {', '.join(p.value for p in Platform)} or '*'")] = (
        Field(description="A platform, or '*'"))


CapRequest = Annotated[UserCap | TeamCap | PlatformCap, Field(discriminator="kind")]


class FairShareRequest(Body):
    """Who takes turns within a priority from now on: each user, or each team (a job without a team counts as
    its owner's). Jobs queued already keep their turns."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"by": "team"}]})

    by: Literal["user", "team"]
    reason: QueueReason | None = None


class QueueChange(BaseModel):
    """One change of the claim policy, as recorded: who, when, what, why."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "seq": 7, "changed_at": "2026-01-01T12:00:00Z", "actor": "ops-console", "setting": "pause",
        "scope": "tiktok", "value": {}, "reason": "encoder pool upgrade"}]})

    seq: int
    changed_at: datetime
    actor: str
    setting: Literal["pause", "resume", "cap", "fair_share"]
    scope: str = Field(description="'*' or a platform (pause, resume), '<kind>:<key>' (cap), 'queue' (fair_share)")
    value: dict[str, Any] = Field(description='{"max_processing": n} (null: the cap removed), '
                                              '{"fair_share": "team"}, or {}')
    reason: str | None


class QueuePause(BaseModel):
    """A pause in force."""

    platform: str = Field(description="A platform, or '*': every platform")
    paused_at: datetime
    actor: str
    reason: str | None


class QueueCap(BaseModel):
    """A cap in force."""

    kind: Literal["user", "team", "platform"]
    key: str = Field(description="A user id, a team id, a platform, or '*': each one without a cap of its own")
    max_processing: int


class QueuePolicy(BaseModel):
    """The claim policy now: who takes turns, the pauses, the caps."""

    fair_share: Literal["user", "team"]
    pauses: list[QueuePause]
    caps: list[QueueCap]


class QueueHistory(BaseModel):
    """Changes of the claim policy, newest first."""

    changes: list[QueueChange]


def change_of(change: PolicyChange) -> QueueChange:
    """A recorded change as the API answers it."""
    return QueueChange.model_validate(change)


def policy_of(policy: ClaimPolicy) -> QueuePolicy:
    """The policy as the API answers it."""
    return QueuePolicy.model_validate(policy, from_attributes=True)


def cap_key(request: UserCap | TeamCap | PlatformCap) -> str:
    """The cap's key as `manager.queue.set_cap` takes it."""
    key = request.key
    return str(key.value) if isinstance(key, Platform) else str(key)
