"""Reading jobs: by id, by user, by team, with filters, offset or keyset pagination."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pydantic

from statemachine import ValidationError, to_validation_error
from statemachine.validation import check_user_id
from store.events import as_uuid
from store.job_writes import read_job_now
from store.jobs import JobQuery, StatsScope, count_jobs, find_jobs, get_stats

from ..models import Job, JobFilters, JobPage, decode_cursor, encode_cursor
from .core import ManagerCore, fold_to_job

MAX_LIMIT = 500
MAX_OFFSET = 100_000


class ReadsMixin(ManagerCore):
    """get_job_by_id, get_user_jobs, get_team_jobs, list_jobs."""

    async def get_job_by_id(self, job_id: UUID | str) -> Job:
        """The job as it is now, or JobNotFound (also when the caller may not see it).

        Its projected row and the events the projection has not applied yet, folded: true
        whether or not a projector runs, and without waiting for one.
        """
        job_id = as_uuid(job_id)
        async with self._connection() as conn:
            base, since = await read_job_now(conn, job_id)
        return fold_to_job(job_id, base, since)

    async def get_user_jobs(self, user_id: str, limit: int = 50, offset: int = 0,
                            filters: JobFilters | dict[str, Any] | None = None, cursor: str | None = None) -> JobPage:
        """One user's jobs, newest first. `cursor` (from next_cursor) pages by keyset; offset is kept too."""
        self._own_scope(check_user_id(user_id))
        return await self._page(JobQuery(user_id=user_id), limit, offset, filters, cursor)

    async def get_team_jobs(self, team_id: UUID | str, limit: int = 50, offset: int = 0,
                            filters: JobFilters | dict[str, Any] | None = None, cursor: str | None = None) -> JobPage:
        """One team's jobs, newest first (same paging as get_user_jobs)."""
        return await self._page(JobQuery(team_id=as_uuid(team_id, "team_id")), limit, offset, filters, cursor)

    async def list_jobs(self, limit: int = 50, offset: int = 0, filters: JobFilters | dict[str, Any] | None = None,
                        cursor: str | None = None) -> JobPage:
        """Every job the caller may see (a user: their own and their teams'), newest first."""
        return await self._page(JobQuery(), limit, offset, filters, cursor)

    async def _page(self, scope: JobQuery, limit: int, offset: int, filters: Any, cursor: str | None) -> JobPage:
        query = _query(scope, _limit(limit), _offset(offset), _filters(filters), cursor)
        await self._read_your_writes()
        async with self._connection() as conn:
            rows = await find_jobs(conn, query)
            total = await _total(conn, query)
        items = [Job.model_validate(r.model_dump()) for r in rows]
        next_cursor = encode_cursor(items[-1].created_at, items[-1].job_id) if len(items) == query.limit else None
        return JobPage(items=items, total=total, limit=query.limit, offset=query.offset, next_cursor=next_cursor)


STATUS_COUNTERS = {"queued": "queued_jobs", "processing": "processing_jobs", "completed": "completed_jobs",
                   "failed": "failed_jobs", "cancelled": "cancelled_jobs"}


async def _total(conn, query: JobQuery) -> int:
    """How many jobs match: from the scope's counters when only the status narrows it, else a count."""
    only_status = not (query.platform_target or query.quality_preset or query.enhancement_level
                       or query.created_from or query.created_before)
    if only_status and (query.user_id or query.team_id):
        scope, scope_id = ("user", query.user_id) if query.user_id else ("team", str(query.team_id))
        counters = await get_stats(conn, StatsScope.one(scope, scope_id))
        if not query.statuses:
            return counters.total_jobs
        return sum(getattr(counters, STATUS_COUNTERS[s]) for s in set(query.statuses))
    return await count_jobs(conn, query)


def _query(scope: JobQuery, limit: int, offset: int, filters: JobFilters, cursor: str | None) -> JobQuery:
    return JobQuery(
        user_id=scope.user_id, team_id=scope.team_id,
        statuses=tuple(s.value for s in filters.status) if filters.status else None,
        platform_target=filters.platform_target.value if filters.platform_target else None,
        quality_preset=filters.quality_preset.value if filters.quality_preset else None,
        enhancement_level=filters.enhancement_level.value if filters.enhancement_level else None,
        created_from=filters.created_from(), created_before=filters.created_before(),
        after=decode_cursor(cursor) if cursor is not None else None, limit=limit,
        offset=0 if cursor is not None else offset)


def _filters(filters: JobFilters | dict[str, Any] | None) -> JobFilters:
    if filters is None or isinstance(filters, JobFilters):
        return filters or JobFilters()
    if not isinstance(filters, dict):
        raise ValidationError("filters must be a mapping", field="filters")
    try:
        return JobFilters.model_validate(filters)
    except pydantic.ValidationError as exc:
        raise to_validation_error(exc) from exc


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return limit


def _offset(offset: Any) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationError(f"offset must be an integer from 0 to {MAX_OFFSET}", field="offset")
    return offset
