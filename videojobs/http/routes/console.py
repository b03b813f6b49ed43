"""The operator console's endpoints (service_role tokens): the overview, every job across tenants, bulk retry.

The overview reads counters and small tables (the stats counters, the run queue, the projector's
checkpoint, the processing jobs' index), never the log: the console asks for it again when the change
feed says something changed, and now and then for the ages that grow by themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query

from videojobs import BulkResult, VideoJobManager

from ..console_schemas import Overview, OwnerQuery, QueueRow, RetryFailedRequest, RetryFailedResponse, StuckRow
from ..dependencies import ServiceManager, State
from ..health import check_health
from ..schemas import JobPageResponse
from .common import problems
from .filters import Listing

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
STUCK_LIMIT = 100
FILTER_FIELDS = ("platform_target", "quality_preset", "enhancement_level", "date_from", "date_to")


@router.get("/overview", response_model=Overview, summary="The operator console's figures",
            responses=problems(403))
async def overview(manager: ServiceManager, state: State,
                   days: Annotated[int, Query(ge=1, le=366, description="Days in the daily series")] = 14,
                   ) -> Overview:
    """Every job's counters (get_job_stats), the run queue by platform and priority and the oldest claimable
    job's wait, the projection lag and what holds its horizon back, and the stuck jobs with their time-out."""
    timeout = state.settings.stuck_timeout_seconds
    stats = await manager.get_job_stats(days=days)
    queue = [QueueRow(platform_target=q.platform_target, priority=q.priority, queued=q.queued,
                      claimable=q.claimable, oldest_claimable_seconds=q.oldest_claimable_seconds)
             for q in await manager.maintenance.queue_depth()]
    health = await check_health(manager, timeout)
    stuck = [StuckRow(job_id=s.job_id, version=s.version, attempt=s.attempt, attempts_left=s.attempts_left,
                      idle_seconds=s.idle_seconds, timeout_seconds=timeout)
             for s in await manager.maintenance.stuck_jobs(timeout, STUCK_LIMIT)]
    waits = [q.oldest_claimable_seconds for q in queue if q.claimable]
    return Overview(stats=stats, queue=queue, oldest_queued_seconds=max(waits) if waits else None,
                    projector=health.projector, detector=health.detector, stuck=stuck,
                    stuck_timeout_seconds=timeout, generated_at=datetime.now(UTC))


@router.get("/jobs", response_model=JobPageResponse, summary="Every job, across tenants, filtered and paged",
            responses=problems(403))
async def all_jobs(manager: ServiceManager, listing: Listing,
                   user_id: OwnerQuery = None,
                   team_id: Annotated[UUID | None, Query(description="Only this team's jobs")] = None,
                   ) -> JobPageResponse:
    """Newest first, with the job lists' filters and also a user and a team; `cursor` pages by keyset."""
    page = await manager.list_jobs(listing.limit, listing.offset, listing.filters, listing.cursor,
                                   user_id=user_id, team_id=team_id)
    return JobPageResponse.model_validate(page.model_dump())


@router.post("/jobs/retry-failed", response_model=RetryFailedResponse, summary="Retry the failed jobs of a filter",
             responses=problems(403, 413))
async def retry_failed(request: Annotated[RetryFailedRequest, Body()], manager: ServiceManager,
                       ) -> RetryFailedResponse:
    """Queue again every failed job that matches the filters (at most `limit`, newest first), each through
    the state machine: a result per job, the job as retried or the typed error (a job that left `failed`
    meanwhile is refused, not moved)."""
    results = await _retry(manager, request)
    return RetryFailedResponse(matched=len(results), retried=sum(r.ok for r in results),
                               more=len(results) >= request.limit, results=results)


async def _retry(manager: VideoJobManager, request: RetryFailedRequest) -> list[BulkResult]:
    given = request.model_dump(include=set(FILTER_FIELDS), exclude_none=True)  # checked by the manager (422)
    return await manager.bulk.retry_failed(given, user_id=request.user_id,
                                           team_id=request.team_id, reason=request.reason, limit=request.limit)
