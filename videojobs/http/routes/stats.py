"""Statistics read from the log: how long jobs waited to be claimed (claim latency)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from videojobs.manager.stats import MAX_LATENCY_HOURS
from videojobs.models import ClaimLatency

from ..dependencies import Manager
from .common import problems

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


@router.get("/claim-latency", response_model=list[ClaimLatency], summary="How long jobs waited to be claimed",
            responses=problems(403))
async def claim_latency(
        manager: Manager,
        hours: Annotated[int, Query(ge=1, le=MAX_LATENCY_HOURS, description="The window: starts of the last "
                                                                             "this many hours")] = 24,
        team_id: Annotated[UUID | None, Query(description="Only this team's jobs (a team the caller is not in: "
                                                          "none)")] = None,
) -> list[ClaimLatency]:
    """Per platform: how many jobs were claimed (start events) in the window, and the median, 95th
    percentile (exact) and longest time they waited, in seconds, from when each became claimable
    for that attempt (queued, or its run_at or retry_after when later) to its start.

    Of every job the caller may see (an end user: their own and their teams'; a service: every
    job), or of one team's. One row per platform, by name.
    """
    return await manager.get_claim_latency(hours=hours, team_id=team_id)
