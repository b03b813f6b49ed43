"""The teams service: members see each other's team jobs; changes take effect on the next transaction."""

from __future__ import annotations

from uuid import UUID

from store.teams import (
    TeamMember,
    add_team_member,
    create_team,
    delete_team,
    list_team_members,
    list_teams,
    remove_team_member,
)

from ..models import Team
from .session import Session


class Teams:
    """create, add_member, remove_member, delete, visible, members.

    Every change goes through a database function that checks the caller (vjm.create_team, ...);
    the database issues team ids, and a deleted team's id is never issued again.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    async def create(self, name: str, owner_id: str) -> Team:
        """Create a team owned (and joined) by `owner_id`; the database issues its id."""
        async with self._session.connection() as conn:
            team = await create_team(conn, name, owner_id=owner_id)
        return Team.model_validate(team.model_dump())

    async def add_member(self, team_id: UUID | str, user_id: str, role: str = "member") -> TeamMember:
        """Add `user_id` to the team (only its owner or an admin may)."""
        async with self._session.connection() as conn:
            return await add_team_member(conn, team_id, user_id, role)

    async def remove_member(self, team_id: UUID | str, user_id: str) -> bool:
        """Remove `user_id` from the team; True if they were a member."""
        async with self._session.connection() as conn:
            return await remove_team_member(conn, team_id, user_id)

    async def delete(self, team_id: UUID | str) -> Team:
        """Delete a team (its owner or an admin); refused (ConcurrencyConflict) while it has jobs that are not deleted."""
        async with self._session.connection() as conn:
            team = await delete_team(conn, team_id)
        return Team.model_validate(team.model_dump())

    async def visible(self, limit: int = 100) -> list[Team]:
        """The teams the caller may see."""
        async with self._session.connection() as conn:
            teams = await list_teams(conn, limit)
        return [Team.model_validate(t.model_dump()) for t in teams]

    async def members(self, team_id: UUID | str, limit: int = 1000) -> list[TeamMember]:
        """Members of one team that the caller may see."""
        async with self._session.connection() as conn:
            return await list_team_members(conn, team_id, limit)
