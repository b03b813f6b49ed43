"""Teams: create, list, members, delete, and a team's jobs and statistics.

Members only: anyone else gets 404, as if the team did not exist. Changes go through the
database's checked functions (only the owner or an admin adds or removes members).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Response, status

from videojobs import JobStats, Team, VideoJobManager
from videojobs.models import LABEL_PATTERN, MAX_USER_ID, TeamMember

from ..auth import own_sub
from ..dependencies import Caller, Manager
from ..problems import ProblemError
from ..schemas import AddMemberRequest, CreateTeamRequest, JobPageResponse
from .common import problems
from .filters import Listing

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])
TeamId = Annotated[UUID, Path(description="The team id")]
MAX_TEAMS = 1000
TEAM_SCAN_LIMIT = 10_000  # the most teams one teams.visible call returns
MemberId = Annotated[str, Path(min_length=1, max_length=MAX_USER_ID, json_schema_extra={"pattern": LABEL_PATTERN},
                               description="The member's user id")]


async def _require_team(manager: VideoJobManager, team_id: UUID) -> None:
    """404 unless the team exists and the caller may see it: RLS decides what teams.visible returns
    (a service sees every team that is not deleted, so a service too gets 404 for a deleted team).

    A caller who sees TEAM_SCAN_LIMIT teams or more is let through: the list cannot tell, and the
    database still decides what the request reads. (A manager lookup of one team would do
    without the scan: see the report of issue 17, item 6.)
    """
    teams = await manager.teams.visible(TEAM_SCAN_LIMIT)
    if len(teams) < TEAM_SCAN_LIMIT and not any(team.team_id == team_id for team in teams):
        raise ProblemError(404, "team-not-found", "Team not found", f"team {team_id} not found")


@router.get("/{team_id}/jobs", response_model=JobPageResponse, summary="A team's jobs, filtered and paged",
            responses=problems(403, 404))
async def team_jobs(team_id: TeamId, manager: Manager, listing: Listing) -> JobPageResponse:
    """Newest first, with the same filters and paging as the user's list."""
    await _require_team(manager, team_id)
    page = await manager.get_team_jobs(team_id, listing.limit, listing.offset, listing.filters, listing.cursor)
    return JobPageResponse.model_validate(page.model_dump())


@router.get("/{team_id}/jobs/stats", response_model=JobStats, summary="Statistics of a team's jobs",
            responses=problems(403, 404))
async def team_stats(team_id: TeamId, manager: Manager,
                     days: Annotated[int, Query(ge=1, le=366)] = 30) -> JobStats:
    """Counts by status, processing times, a platform breakdown and a daily series."""
    await _require_team(manager, team_id)
    return await manager.get_job_stats(team_id=team_id, days=days)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Team, summary="Create a team",
             responses=problems(403, 422))
async def create_team(request: Annotated[CreateTeamRequest, Body()], who: Caller, manager: Manager) -> Team:
    """The caller owns and joins it (services name `owner_id`); the database issues its id."""
    if who.is_service:
        if request.owner_id is None:
            raise ProblemError(422, "validation-error", "Invalid request", "service callers must name owner_id",
                               errors=[{"field": "owner_id", "message": "required for service callers"}])
        owner = request.owner_id
    else:
        if request.owner_id not in (None, who.sub):
            raise ProblemError(403, "forbidden", "Forbidden", "end users create teams they own")
        owner = own_sub(who)
    return await manager.teams.create(request.name, owner)


@router.get("", response_model=list[Team], summary="The teams the caller may see", responses=problems())
async def list_teams(manager: Manager) -> list[Team]:
    """Teams the caller owns or belongs to (services: every team), oldest first."""
    return await manager.teams.visible(MAX_TEAMS)


@router.get("/{team_id}/members", response_model=list[TeamMember], summary="A team's members",
            responses=problems(404))
async def list_members(team_id: TeamId, manager: Manager) -> list[TeamMember]:
    """Who is in the team, and as what (members and admins may see)."""
    await _require_team(manager, team_id)
    return await manager.teams.members(team_id)


@router.post("/{team_id}/members", status_code=status.HTTP_201_CREATED, response_model=TeamMember,
             summary="Add a member", responses=problems(403, 404, 422))
async def add_member(team_id: TeamId, request: Annotated[AddMemberRequest, Body()],
                     manager: Manager) -> TeamMember:
    """Only the team's owner or an admin may; the new member sees the team's jobs from the next request."""
    await _require_team(manager, team_id)
    return await manager.teams.add_member(team_id, request.user_id, request.role)


@router.delete("/{team_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Remove a member", responses=problems(403, 404))
async def remove_member(team_id: TeamId, user_id: MemberId, manager: Manager) -> Response:
    """The owner or an admin removes anyone; a member may remove themselves. 404 if not a member."""
    await _require_team(manager, team_id)
    if not await manager.teams.remove_member(team_id, user_id):
        raise ProblemError(404, "member-not-found", "Member not found", f"{user_id} is not a member of {team_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{team_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Delete a team", responses=problems(403, 404, 409))
async def delete_team(team_id: TeamId, manager: Manager) -> Response:
    """Its owner or an admin; 409 while it has jobs that are not deleted. Its id is never issued again."""
    await _require_team(manager, team_id)
    await manager.teams.delete(team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

