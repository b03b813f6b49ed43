"""The jobs service: create, read and change single jobs; every change is one transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from statemachine.validation import check_user_id, instant_text
from store import Event
from store.events import as_uuid
from store.job_writes import read_job_now
from store.jobs import JobQuery, StatsScope, count_jobs, find_jobs, get_stats

from ..models import Attempt, Job, JobFilters, JobPage, encode_cursor
from .job_inputs import attempt_of, key_wait_of, metadata_fields, page_query, status_transition
from .reads import read_on
from .session import Session, fold_to_job

Filters = JobFilters | dict[str, Any] | None


class Jobs:
    """create_job, start/progress/complete/fail/cancel/retry, metadata, delete; get and list."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def create_job(self, *, user_id: str, original_filename: str, original_filesize: int, clip_count: int,
                         quality_preset: str, enhancement_level: str, platform_target: str,
                         team_id: UUID | str | None = None, max_attempts: int = 3, priority: int = 0,
                         run_at: datetime | str | None = None, idempotency_key: str | None = None,
                         key_wait: float | None = None) -> Job:
        """Create a job in status `queued` and return it. `priority` 0-9, higher claimed first; `run_at` an
        aware datetime (or RFC 3339 text) before which no worker claims it.

        With `idempotency_key` (1-200 visible ASCII characters), the same key from the same user
        within the window (24 hours: vjm.idempotency_settings) returns the job it made, as it was
        created, and writes nothing; the same key with a different request raises
        IdempotencyConflict. A create with the key still in progress elsewhere is waited for, at
        most `key_wait` seconds when given (then IdempotencyKeyInUse).
        """
        data = dict(original_filename=original_filename, original_filesize=original_filesize,
                    clip_count=clip_count, quality_preset=quality_preset, enhancement_level=enhancement_level,
                    platform_target=platform_target, max_attempts=max_attempts, priority=priority,
                    run_at=instant_text(run_at))
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        _, job = await self._session.append_job("create", data, user_id=user_id, team_id=team_id,
                                                lock_timeout=key_wait_of(key_wait))
        return job

    async def start_processing(self, job_id: UUID | str, worker_id: str | None = None) -> Attempt:
        """Move a queued job to processing (sets started_at); returns the attempt token to report with."""
        event, job = await self._session.append_job("start", {"worker_id": worker_id}, job_id=as_uuid(job_id),
                                                    actor=worker_id or None)
        return Attempt(job_id=event.job_id, attempt=event.attempt, worker_id=worker_id, job=job)

    async def report_progress(self, job_id: UUID | str, attempt: int, percent: float | None = None,
                              clips_done: int | None = None, *, phase: str | None = None,
                              actor: str | None = None) -> Job:
        """Record progress of the current attempt (a stale attempt is refused); `phase` names the step."""
        return await self._change("progress", job_id, {"percent": percent, "clips_done": clips_done, "phase": phase},
                                  attempt=attempt_of(attempt, required=True), actor=actor)

    async def complete_job(self, job_id: UUID | str, output_paths: list[str], processing_time: float | None = None,
                           attempt: int | None = None, *, actor: str | None = None) -> Job:
        """Mark a processing job completed with its output files (sets completed_at, processing_time)."""
        return await self._change("complete", job_id, {"output_paths": output_paths,
                                                       "processing_time": processing_time},
                                  attempt=attempt_of(attempt), actor=actor)

    async def fail_job(self, job_id: UUID | str, error: str, attempt: int | None = None, *,
                       actor: str | None = None) -> Job:
        """Mark a processing job failed with an error message."""
        return await self._change("fail", job_id, {"error": error}, attempt=attempt_of(attempt), actor=actor)

    async def cancel_job(self, job_id: UUID | str, reason: str | None = None) -> Job:
        """Cancel a queued or processing job."""
        return await self._change("cancel", job_id, {"reason": reason})

    async def retry_job(self, job_id: UUID | str, reason: str | None = None) -> Job:
        """Queue a failed or cancelled job again, with a fresh attempt budget."""
        return await self._change("retry", job_id, {"reason": reason})

    async def update_job_metadata(self, job_id: UUID | str, *, expected_version: int | None = None,
                                  **fields: Any) -> Job:
        """Change metadata (filename, clip_count, preset, enhancement, platform)."""
        return await self._change("update_metadata", job_id, metadata_fields(fields),
                                  expected_version=expected_version)

    async def reschedule_job(self, job_id: UUID | str, *, priority: int | None = None,
                             run_at: datetime | str | None = None, expected_version: int | None = None) -> Job:
        """Change a queued job's priority or run_at (at least one; a run_at already past: claimable at once).
        The history records it (a `reschedule` event); the run queue follows in the same transaction."""
        return await self._change("reschedule", job_id, {"priority": priority, "run_at": instant_text(run_at)},
                                  expected_version=expected_version)

    async def update_job_status(self, job_id: UUID | str, status: str, **fields: Any) -> Job:
        """The specification's generic form: reach `status` through the trigger that leads there.

        processing: worker_id; completed: output_paths, processing_time, attempt;
        failed: error (or error_message), attempt; cancelled, queued: reason.
        """
        trigger, data, ids = status_transition(status, fields)
        return await self._change(trigger, job_id, data, **ids)

    async def delete_job(self, job_id: UUID | str, reason: str | None = None) -> Event:
        """Delete a job: a tombstone event. It leaves the jobs table; its history stays for auditors."""
        return await self._session.append("delete", {"reason": reason}, job_id=as_uuid(job_id))

    async def _change(self, trigger: str, job_id: UUID | str, data: dict[str, Any], **ids: Any) -> Job:
        _, job = await self._session.append_job(trigger, data, job_id=as_uuid(job_id), **ids)
        return job

    async def get_job_by_id(self, job_id: UUID | str) -> Job:
        """The job as it is now, or JobNotFound (also when the caller may not see it).

        Its projected row and the events the projection has not applied yet, folded: true
        whether or not a projector runs, and without waiting for one.
        """
        job_id = as_uuid(job_id)
        async with self._session.connection() as conn:
            base, since = await read_job_now(conn, job_id)
        return fold_to_job(job_id, base, since)

    async def get_user_jobs(self, user_id: str, limit: int = 50, offset: int = 0, filters: Filters = None,
                            cursor: str | None = None) -> JobPage:
        """One user's jobs, newest first. `cursor` (from next_cursor) pages by keyset; offset is kept too."""
        self._session.own_scope(check_user_id(user_id))
        return await self._page(JobQuery(user_id=user_id), limit, offset, filters, cursor)

    async def get_team_jobs(self, team_id: UUID | str, limit: int = 50, offset: int = 0, filters: Filters = None,
                            cursor: str | None = None) -> JobPage:
        """One team's jobs, newest first (same paging as get_user_jobs)."""
        return await self._page(JobQuery(team_id=as_uuid(team_id, "team_id")), limit, offset, filters, cursor)

    async def list_jobs(self, limit: int = 50, offset: int = 0, filters: Filters = None,
                        cursor: str | None = None, *, user_id: str | None = None,
                        team_id: UUID | str | None = None) -> JobPage:
        """Every job the caller may see (a user: their own and their teams'), newest first; narrowed to
        one owner (`user_id`) and/or one team (`team_id`) when given (the operator console's filters)."""
        scope = JobQuery(user_id=check_user_id(user_id) if user_id is not None else None,
                         team_id=as_uuid(team_id, "team_id") if team_id is not None else None)
        return await self._page(scope, limit, offset, filters, cursor)

    async def _page(self, scope: JobQuery, limit: int, offset: int, filters: Filters, cursor: str | None) -> JobPage:
        query = page_query(scope, limit, offset, filters, cursor)
        async def rows_and_total(conn: Any) -> tuple[list[Any], int]:
            return await find_jobs(conn, query, Job), await _total(conn, query)

        items, total = await read_on(self._session, rows_and_total, models=True)
        next_cursor = encode_cursor(items[-1].created_at, items[-1].job_id) if len(items) == query.limit else None
        return JobPage(items=items, total=total, limit=query.limit, offset=query.offset, next_cursor=next_cursor)


STATUS_COUNTERS = {"queued": "queued_jobs", "processing": "processing_jobs", "completed": "completed_jobs",
                   "failed": "failed_jobs", "cancelled": "cancelled_jobs"}


async def _total(conn: Any, query: JobQuery) -> int:
    """How many jobs match: from the scope's counters when only the status narrows it, else a count."""
    only_status = not (query.platform_target or query.quality_preset or query.enhancement_level
                       or query.created_from or query.created_before)
    if only_status and (query.user_id is None) != (query.team_id is None):  # one scope: its counters
        scope, scope_id = ("user", query.user_id) if query.user_id else ("team", str(query.team_id))
        counters = await get_stats(conn, StatsScope.one(scope, scope_id))
        if not query.statuses:
            return counters.total_jobs
        return sum(getattr(counters, STATUS_COUNTERS[s]) for s in set(query.statuses))
    return await count_jobs(conn, query)
