"""Teams and memberships: who sees whose jobs. No run-time role may write the team tables; every change goes
through a SECURITY DEFINER function that checks its caller (sql/schema/040_teams_and_rights.sql): a user
creates teams they own (the database issues the id), a team's owner adds and removes members and deletes
the team, anyone may leave a team, an admin may do everything. A team the caller may not see and one that
does not exist are the same TeamNotFound. Call these inside `acting_as(...)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from statemachine import ConcurrencyConflict, ValidationError, VJMError
from statemachine.validation import check_team_name, check_user_id

from .errors import SQLSTATE_CONFLICT, SQLSTATE_NOT_FOUND, translate_error
from .executor import Executor
from .queries import fetch_all, fetch_one, fetch_optional, fetch_value

MEMBER_ROLES = frozenset({"owner", "member"})


class TeamNotFound(VJMError, LookupError):
    """No live team with this id, or the caller may not see it (the same answer for both)."""

    def __init__(self, team_id: object):
        super().__init__(f"team {team_id} not found")
        self.team_id = team_id


class Team(BaseModel):
    """A team: its members see each other's team jobs."""

    model_config = ConfigDict(frozen=True)

    team_id: UUID
    name: str
    owner_id: str
    created_at: datetime


class TeamMember(BaseModel):
    """One user's membership of one team."""

    model_config = ConfigDict(frozen=True)

    team_id: UUID
    user_id: str
    role: str
    added_at: datetime


def _team_id(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value)) if isinstance(value, str) else UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise ValidationError(f"team_id must be a UUID, got {str(value)[:60]!r}", field="team_id") from None


@contextlib.contextmanager
def _team_errors(team_id: object = None) -> Iterator[None]:
    """Driver errors as vjm errors: VJ404 is TeamNotFound(team_id), VJ409 a team that still has jobs."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == SQLSTATE_NOT_FOUND:
            raise TeamNotFound(team_id) from exc
        if getattr(exc, "sqlstate", None) == SQLSTATE_CONFLICT:  # a team that still has jobs
            raise ConcurrencyConflict(None, message=f"{exc}: {getattr(exc, 'hint', None) or ''}".rstrip(": ")) from exc
        raise translate_error(exc) from exc


async def create_team(executor: Executor, name: str, *, owner_id: str) -> Team:
    """Create a team owned and joined by `owner_id` (an end user may only name themselves); the database issues its id."""
    name, owner_id = check_team_name(name), check_user_id(owner_id, field="owner_id")
    with _team_errors():
        row = await fetch_one(executor, "team_create", name=name, owner_id=owner_id)
    return Team.model_validate(dict(row.items()))


async def delete_team(executor: Executor, team_id: UUID | str) -> Team:
    """Delete a team (its owner or an admin): its members go and its id is never issued again.

    Refused with ConcurrencyConflict while the team has jobs that are not deleted; TeamNotFound
    when there is no such live team or the caller may not see it; AccessDenied for a member
    who does not own it.
    """
    team = _team_id(team_id)
    with _team_errors(team):
        row = await fetch_one(executor, "team_delete", team_id=team)
    return Team.model_validate(dict(row.items()))


async def add_team_member(executor: Executor, team_id: UUID | str, user_id: str, role: str = "member") -> TeamMember:
    """Add `user_id` to a team (or change their role): its owner or an admin.

    TeamNotFound when the caller may not see the team (or there is none); AccessDenied for a member who does not own it.
    """
    if role not in MEMBER_ROLES:
        raise ValidationError(f"role must be one of {sorted(MEMBER_ROLES)}", field="role")
    team, member = _team_id(team_id), check_user_id(user_id)
    with _team_errors(team):
        row = await fetch_one(executor, "team_member_add", team_id=team, user_id=member, role=role)
    return TeamMember.model_validate(dict(row.items()))


async def remove_team_member(executor: Executor, team_id: UUID | str, user_id: str) -> bool:
    """Remove a member; False when there was no such membership the caller may remove."""
    team, member = _team_id(team_id), check_user_id(user_id)
    with _team_errors():
        row = await fetch_optional(executor, "team_member_remove", team_id=team, user_id=member)
    return row is not None


async def list_teams(executor: Executor, limit: int = 100) -> list[Team]:
    """The teams the caller may see (owned or member of)."""
    limit = _limit(limit)
    with _team_errors():
        rows = await fetch_all(executor, "team_get_visible", limit=limit)
    return [Team.model_validate(dict(r.items())) for r in rows]


async def my_team_ids(executor: Executor) -> list[UUID]:
    """The calling end user's teams: the teams whose jobs they see."""
    with _team_errors():
        return list(await fetch_value(executor, "team_id_get_mine") or [])


async def list_team_members(executor: Executor, team_id: UUID | str, limit: int = 1000) -> list[TeamMember]:
    """The members of a team, as far as the caller may see them."""
    team, limit = _team_id(team_id), _limit(limit)
    with _team_errors():
        rows = await fetch_all(executor, "team_member_get_many", team_id=team, limit=limit)
    return [TeamMember.model_validate(dict(r.items())) for r in rows]


def _limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValidationError("limit must be an integer between 1 and 10000", field="limit")
    return value
