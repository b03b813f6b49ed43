"""The bulk service: many jobs in one call, a result for every job, never a silent all-or-nothing."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from statemachine import ValidationError, VJMError
from statemachine.validation import check_user_id, instant_text
from store import EventStore, NewEvent
from store.events import NewCreates, as_uuid, prepare_creates, prepare_event
from store.jobs import JobQuery, find_jobs
from store.models import construct_valid
from store.projections import JobRow
from store.projections.fold import created_row

from ..models import BulkResult, Job, JobFilters
from .job_inputs import MAX_LIMIT, failed_only, page_query, status_transition
from .session import Session, refused

MAX_BULK = 10_000
CREATE_FIELDS = ("user_id", "original_filename", "original_filesize", "clip_count", "quality_preset",
                 "enhancement_level", "platform_target", "team_id", "max_attempts", "priority", "run_at",
                 "idempotency_key")
_CREATE_KEYS = frozenset(CREATE_FIELDS)


class Bulk:
    """bulk_create_jobs, bulk_update_status, bulk_delete_jobs."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def bulk_create_jobs(self, jobs: list[dict[str, Any]]) -> list[Job]:
        """Create many jobs in one round trip; all are validated first, then written all or nothing.

        A job with an `idempotency_key` is as create_job's: one whose key the same user used within the
        window comes back as that job, as created, and so does a later job of the list with the same user
        and key (each must be the same request, else IdempotencyConflict and nothing is written).
        """
        if not isinstance(jobs, list) or not 1 <= len(jobs) <= MAX_BULK:
            raise ValidationError(f"jobs must be a list of 1 to {MAX_BULK} jobs", field="jobs")
        creates = _prepare_creates(jobs, self._session.actor("create"))
        async with self._session.connection() as conn:
            batch = await EventStore(conn).append_create_batch(creates)
        self._session.remember(batch.cursor)
        # The rows the projector will make of these events (store.projections.fold), built from the columns
        # sent and decided without an Event each; every value already has its field's type.
        return [construct_valid(Job, created_row(*columns)) for columns in zip(
            batch.job_ids, creates.user_ids, creates.team_ids, batch.attempts_left, batch.occurred_at,
            batch.positions, creates.data, strict=True)]

    async def bulk_update_status(self, job_ids: list[UUID | str], status: str, **fields: Any) -> list[BulkResult]:
        """Move each job to `status`; returns, per job, the new job or the error that stopped it.

        One round trip and one commit per 50 jobs (vjm.append_events): a refused job
        (wrong state, unknown, not the caller's, a malformed id) is reported and the
        others still change.
        """
        ids = _ids(job_ids)
        try:
            trigger, data, extra = status_transition(status, fields)
        except VJMError as exc:
            return [refused(job_id, exc) for job_id in ids]
        return await self._apply_each(ids, trigger, data, extra)

    async def bulk_delete_jobs(self, job_ids: list[UUID | str]) -> list[BulkResult]:
        """Delete each job (tombstones); returns a result per job, as bulk_update_status does."""
        return await self._apply_each(_ids(job_ids), "delete", {"reason": None}, {})

    async def retry_failed(self, filters: JobFilters | dict[str, Any] | None = None, *, user_id: str | None = None,
                           team_id: UUID | str | None = None, reason: str | None = None,
                           limit: int = MAX_BULK) -> list[BulkResult]:
        """Retry the failed jobs that match `filters` (and `user_id`, `team_id`), at most `limit` of them,
        newest first; a result per job, as bulk_update_status gives. Read from the job lists (what the
        caller may see); a job that left `failed` meanwhile is reported refused, never moved elsewhere.
        An empty list: nothing matched. As many results as `limit`: there may be more, call again."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BULK:
            raise ValidationError(f"limit must be an integer from 1 to {MAX_BULK}", field="limit")
        failed = failed_only(filters)
        scope = JobQuery(user_id=check_user_id(user_id) if user_id is not None else None,
                         team_id=as_uuid(team_id, "team_id") if team_id is not None else None)
        ids = await self._matching(scope, failed, limit) if failed is not None else []
        if not ids:
            return []
        return await self.bulk_update_status(list[UUID | str](ids), "queued", reason=reason)

    async def _matching(self, scope: JobQuery, filters: JobFilters, limit: int) -> list[UUID]:
        """The ids of up to `limit` jobs of `scope` matching `filters`, newest first (keyset pages)."""
        await self._session.read_your_writes()
        ids: list[UUID] = []
        query = page_query(scope, min(MAX_LIMIT, limit), 0, filters, None)
        async with self._session.connection() as conn:
            while True:
                rows = await find_jobs(conn, query, JobRow)
                ids += [row.job_id for row in rows][: limit - len(ids)]
                if len(rows) < query.limit or len(ids) >= limit:
                    return ids
                query = dataclasses.replace(query, after=(rows[-1].created_at, rows[-1].job_id),
                                            limit=min(MAX_LIMIT, limit - len(ids)))

    async def _apply_each(self, job_ids: list[Any], trigger: str, data: dict[str, Any],
                          extra: dict[str, Any]) -> list[BulkResult]:
        results: list[BulkResult | None] = [None] * len(job_ids)
        events, slots = [], []
        for i, job_id in enumerate(job_ids):
            try:
                events.append(prepare_event(trigger, data, job_id=as_uuid(job_id), **{
                    **extra, "actor": extra.get("actor") or self._session.actor(trigger)}))
                slots.append(i)
            except VJMError as exc:
                results[i] = refused(job_id, exc)
        if events:
            applied = await self._session.append_each(events, [job_ids[i] for i in slots])
            for i, result in zip(slots, applied, strict=True):
                results[i] = result
        filled = [result for result in results if result is not None]
        assert len(filled) == len(results), "every job has a result"
        return filled


def _ids(job_ids: Any) -> list[Any]:
    if not isinstance(job_ids, (list, tuple)) or not 1 <= len(job_ids) <= MAX_BULK:
        raise ValidationError(f"job_ids must be a list of 1 to {MAX_BULK} ids", field="job_ids")
    return list(job_ids)


def _prepare_creates(jobs: list[Any], actor: str | None) -> NewCreates:
    """Every job validated in one pass; if one is bad, again job by job, for the error that names it."""
    try:
        return _prepare_all(jobs, actor)
    except ValidationError:
        return NewCreates.of([_prepare_create(i, job, actor) for i, job in enumerate(jobs)])


def _prepare_all(jobs: list[Any], actor: str | None) -> NewCreates:
    data, user_ids, team_ids, actors = [], [], [], []
    for job in jobs:
        if not isinstance(job, dict) or not job.keys() <= _CREATE_KEYS:
            raise ValidationError("a job is not a create", field="jobs")  # _prepare_create says which and why
        payload = dict(job)
        if payload.get("run_at") is not None:  # an aware datetime or RFC 3339 text, stored as RFC 3339 UTC
            payload["run_at"] = instant_text(payload["run_at"], "run_at")
        user_id, team_id = payload.pop("user_id", None), payload.pop("team_id", None)
        data.append(payload)
        user_ids.append(user_id)
        team_ids.append(team_id)
        actors.append(actor)
    return prepare_creates(data, user_ids, team_ids, actors)


def _prepare_create(index: int, job: Any, actor: str | None) -> NewEvent:
    if not isinstance(job, dict):
        raise ValidationError(f"jobs[{index}] must be an object", field=f"jobs.{index}")
    unknown = sorted(set(job) - set(CREATE_FIELDS))
    if unknown:
        raise ValidationError(f"jobs[{index}]: unknown field {unknown[0]!r}", field=f"jobs.{index}.{unknown[0]}")
    data = {k: v for k, v in job.items() if k not in ("user_id", "team_id")}
    try:
        if data.get("run_at") is not None:
            data["run_at"] = instant_text(data["run_at"], "run_at")
        return prepare_event("create", data, user_id=job.get("user_id"), team_id=job.get("team_id"),
                             actor=actor)
    except ValidationError as exc:
        raise ValidationError(f"jobs[{index}]: {exc}", field=f"jobs.{index}.{exc.field}") from exc
