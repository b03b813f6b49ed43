"""The caller's own jobs and statistics."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from videojobs import AccessDenied, JobStats, ValidationError
from videojobs.models import MAX_USER_ID

from ..auth import Principal, own_sub
from ..dependencies import Caller, Manager
from ..schemas import JobPageResponse
from .common import problems
from .filters import Listing

router = APIRouter(prefix="/api/v1/user", tags=["user"])
UserQuery = Annotated[str | None, Query(min_length=1, max_length=MAX_USER_ID,
                                        description="Service callers: whose jobs. End users: omit (or their own)")]
Scope = Annotated[Literal["own", "visible"], Query(
    description="own: jobs the user owns; visible (end users): also their teams' jobs")]


def _subject(who: Principal, user_id: str | None) -> str:
    if who.is_service:
        if user_id is None:
            raise ValidationError("service callers must name user_id", field="user_id")
        return user_id
    if user_id is not None and user_id != who.sub:
        raise AccessDenied("end users list their own jobs only")
    return own_sub(who)


@router.get("/jobs", response_model=JobPageResponse, summary="The caller's jobs, filtered and paged",
            responses=problems(403))
async def user_jobs(who: Caller, manager: Manager, listing: Listing, user_id: UserQuery = None,
                    scope: Scope = "own") -> JobPageResponse:
    """Newest first. Filters combine; `cursor` (from `next_cursor`) pages by keyset, else limit/offset."""
    subject = _subject(who, user_id)
    if scope == "visible" and not who.is_service:
        page = await manager.list_jobs(listing.limit, listing.offset, listing.filters, listing.cursor)
    else:
        page = await manager.get_user_jobs(subject, listing.limit, listing.offset, listing.filters, listing.cursor)
    return JobPageResponse.model_validate(page.model_dump())


@router.get("/jobs/stats", response_model=JobStats, summary="Statistics of the caller's jobs",
            responses=problems(403))
async def user_stats(who: Caller, manager: Manager, user_id: UserQuery = None, scope: Scope = "own",
                     days: Annotated[int, Query(ge=1, le=366, description="Days in the daily series")] = 30,
                     ) -> JobStats:
    """Counts by status, processing times, a platform breakdown and a daily series.

    Of the same jobs as `GET /user/jobs` with the same `scope` lists: its `total` and these
    counters always agree.
    """
    subject = _subject(who, user_id)
    if scope == "visible" and not who.is_service:
        return await manager.get_job_stats(days=days)
    return await manager.get_job_stats(user_id=subject, days=days)
