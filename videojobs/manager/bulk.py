"""Bulk operations: a result for every job, never a silent all-or-nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from listeners.fold import apply_event
from statemachine import ValidationError, VJMError
from store import NewEvent
from store.events import prepare_event

from ..models import BulkResult, Job
from .core import ManagerCore
from .writes import WritesMixin

MAX_BULK = 10_000
CREATE_FIELDS = ("user_id", "original_filename", "original_filesize", "clip_count", "quality_preset",
                 "enhancement_level", "platform_target", "team_id", "max_attempts")


class BulkMixin(WritesMixin, ManagerCore):
    """bulk_create_jobs, bulk_update_status, bulk_delete_jobs."""

    async def bulk_create_jobs(self, jobs: list[dict[str, Any]]) -> list[Job]:
        """Create many jobs in one round trip; all are validated first, then written all or nothing."""
        if not isinstance(jobs, list) or not 1 <= len(jobs) <= MAX_BULK:
            raise ValidationError(f"jobs must be a list of 1 to {MAX_BULK} jobs", field="jobs")
        events = [_prepare_create(i, job, self._actor()) for i, job in enumerate(jobs)]
        stored = await self._append_prepared(events)
        return [Job.model_validate(apply_event(None, event)) for event in stored]

    async def bulk_update_status(self, job_ids: list[UUID | str], status: str, **fields: Any) -> list[BulkResult]:
        """Move each job to `status`; returns, per job, the new job or the error that stopped it."""
        results = []
        for job_id in _ids(job_ids):
            results.append(await self._one(job_id, self.update_job_status(job_id, status, **dict(fields))))
        return results

    async def bulk_delete_jobs(self, job_ids: list[UUID | str]) -> list[BulkResult]:
        """Delete each job (tombstones); returns a result per job."""
        results = []
        for job_id in _ids(job_ids):
            results.append(await self._one(job_id, self.delete_job(job_id)))
        return results

    async def _one(self, job_id: Any, operation) -> BulkResult:
        try:
            outcome = await operation
        except VJMError as exc:
            return BulkResult(job_id=str(job_id), ok=False, error=str(exc), error_type=type(exc).__name__)
        return BulkResult(job_id=str(job_id), ok=True, job=outcome if isinstance(outcome, Job) else None)


def _ids(job_ids: Any) -> list[Any]:
    if not isinstance(job_ids, (list, tuple)) or not 1 <= len(job_ids) <= MAX_BULK:
        raise ValidationError(f"job_ids must be a list of 1 to {MAX_BULK} ids", field="job_ids")
    return list(job_ids)


def _prepare_create(index: int, job: Any, actor: str | None) -> NewEvent:
    if not isinstance(job, dict):
        raise ValidationError(f"jobs[{index}] must be an object", field=f"jobs.{index}")
    unknown = sorted(set(job) - set(CREATE_FIELDS))
    if unknown:
        raise ValidationError(f"jobs[{index}]: unknown field {unknown[0]!r}", field=f"jobs.{index}.{unknown[0]}")
    data = {k: v for k, v in job.items() if k not in ("user_id", "team_id")}
    try:
        return prepare_event("create", data, user_id=job.get("user_id"), team_id=job.get("team_id"),
                             actor=actor or job.get("user_id"))
    except ValidationError as exc:
        raise ValidationError(f"jobs[{index}]: {exc}", field=f"jobs.{index}.{exc.field}") from exc
