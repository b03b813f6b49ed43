"""A team's jobs and statistics (members only: others get 404, as if the team did not exist)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from videojobs import JobStats, VideoJobManager

from ..auth import Principal
from ..dependencies import Caller, Manager
from ..problems import ProblemError
from ..schemas import JobPageResponse
from .common import problems
from .filters import Listing

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])
TeamId = Annotated[UUID, Path(description="The team id")]
MAX_TEAMS = 1000


async def _require_team(manager: VideoJobManager, who: Principal, team_id: UUID) -> None:
    """404 unless the caller may see the team (RLS decides what list_teams returns)."""
    if who.is_service:
        return
    if not any(team.team_id == team_id for team in await manager.list_teams(MAX_TEAMS)):
        raise ProblemError(404, "team-not-found", "Team not found", f"team {team_id} not found")


@router.get("/{team_id}/jobs", response_model=JobPageResponse, summary="A team's jobs, filtered and paged",
            responses=problems(403, 404))
async def team_jobs(team_id: TeamId, who: Caller, manager: Manager, listing: Listing) -> JobPageResponse:
    """Newest first, with the same filters and paging as the user's list."""
    await _require_team(manager, who, team_id)
    page = await manager.get_team_jobs(team_id, listing.limit, listing.offset, listing.filters, listing.cursor)
    return JobPageResponse.model_validate(page.model_dump())


@router.get("/{team_id}/jobs/stats", response_model=JobStats, summary="Statistics of a team's jobs",
            responses=problems(403, 404))
async def team_stats(team_id: TeamId, who: Caller, manager: Manager,
                     days: Annotated[int, Query(ge=1, le=366)] = 30) -> JobStats:
    """Counts by status, processing times, a platform breakdown and a daily series."""
    await _require_team(manager, who, team_id)
    return await manager.get_job_stats(team_id=team_id, days=days)
