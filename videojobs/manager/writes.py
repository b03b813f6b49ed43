"""Creating and changing jobs: every change is one transition through the state machine."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from statemachine import ALLOWED_TRIGGERS, InvalidTransition, State, ValidationError
from statemachine.validation import check_metadata_fields
from store import Event
from store.events import as_uuid

from ..models import Attempt, Job
from .core import ManagerCore

# update_job_status(status) -> the trigger that reaches that status.
STATUS_TRIGGERS = {
    State.PROCESSING: "start",
    State.COMPLETED: "complete",
    State.FAILED: "fail",
    State.CANCELLED: "cancel",
    State.QUEUED: "retry",
}


class WritesMixin(ManagerCore):
    """create_job, start/progress/complete/fail/cancel/retry, update_job_status, metadata, delete."""

    async def create_job(self, *, user_id: str, original_filename: str, original_filesize: int, clip_count: int,
                         quality_preset: str, enhancement_level: str, platform_target: str,
                         team_id: UUID | str | None = None, max_attempts: int = 3) -> Job:
        """Create a job in status `queued` and return it."""
        data = dict(original_filename=original_filename, original_filesize=original_filesize,
                    clip_count=clip_count, quality_preset=quality_preset, enhancement_level=enhancement_level,
                    platform_target=platform_target, max_attempts=max_attempts)
        _, job = await self._append_job("create", data, user_id=user_id, team_id=team_id)
        return job

    async def start_processing(self, job_id: UUID | str, worker_id: str | None = None) -> Attempt:
        """Move a queued job to processing (sets started_at); returns the attempt token to report with."""
        event, job = await self._append_job("start", {"worker_id": worker_id}, job_id=as_uuid(job_id),
                                            actor=worker_id or None)
        return Attempt(job_id=event.job_id, attempt=event.attempt, worker_id=worker_id, job=job)

    async def report_progress(self, job_id: UUID | str, attempt: int, percent: float | None = None,
                              clips_done: int | None = None, *, actor: str | None = None) -> Job:
        """Record progress of the current attempt (a stale attempt is refused)."""
        _, job = await self._append_job("progress", {"percent": percent, "clips_done": clips_done},
                                         job_id=as_uuid(job_id), attempt=_attempt(attempt, required=True), actor=actor)
        return job

    async def complete_job(self, job_id: UUID | str, output_paths: list[str], processing_time: float | None = None,
                           attempt: int | None = None, *, actor: str | None = None) -> Job:
        """Mark a processing job completed with its output files (sets completed_at, processing_time)."""
        _, job = await self._append_job("complete", {"output_paths": output_paths, "processing_time": processing_time},
                                         job_id=as_uuid(job_id), attempt=_attempt(attempt), actor=actor)
        return job

    async def fail_job(self, job_id: UUID | str, error: str, attempt: int | None = None, *,
                       actor: str | None = None) -> Job:
        """Mark a processing job failed with an error message."""
        _, job = await self._append_job("fail", {"error": error}, job_id=as_uuid(job_id), attempt=_attempt(attempt),
                                         actor=actor)
        return job

    async def cancel_job(self, job_id: UUID | str, reason: str | None = None) -> Job:
        """Cancel a queued or processing job."""
        _, job = await self._append_job("cancel", {"reason": reason}, job_id=as_uuid(job_id))
        return job

    async def retry_job(self, job_id: UUID | str, reason: str | None = None) -> Job:
        """Queue a failed or cancelled job again, with a fresh attempt budget."""
        _, job = await self._append_job("retry", {"reason": reason}, job_id=as_uuid(job_id))
        return job

    async def update_job_metadata(self, job_id: UUID | str, *, expected_version: int | None = None,
                                  **fields: Any) -> Job:
        """Change metadata (filename, clip_count, preset, enhancement, platform)."""
        check_metadata_fields(fields)
        _, job = await self._append_job("update_metadata", fields, job_id=as_uuid(job_id),
                                         expected_version=expected_version)
        return job

    async def update_job_status(self, job_id: UUID | str, status: str, **fields: Any) -> Job:
        """The specification's generic form: reach `status` through the trigger that leads there.

        processing: worker_id; completed: output_paths, processing_time, attempt;
        failed: error (or error_message), attempt; cancelled, queued: reason.
        """
        trigger, data, ids = status_transition(status, fields)
        _, job = await self._append_job(trigger, data, job_id=as_uuid(job_id), **ids)
        return job

    async def delete_job(self, job_id: UUID | str, reason: str | None = None) -> Event:
        """Delete a job: a tombstone event. It leaves the jobs table; its history stays for auditors."""
        return await self._append("delete", {"reason": reason}, job_id=as_uuid(job_id))


def status_transition(status: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """update_job_status(status, **fields) as (trigger, payload, ids): the methods above, by status."""
    trigger, fields = _trigger_for(status), dict(fields)
    if trigger == "start":
        worker_id = fields.pop("worker_id", None)
        data, ids = {"worker_id": worker_id}, {"actor": worker_id or None}
    elif trigger == "complete":
        data = {"output_paths": fields.pop("output_paths", []), "processing_time": fields.pop("processing_time", None)}
        ids = {"attempt": _attempt(fields.pop("attempt", None))}
    elif trigger == "fail":
        error = fields.pop("error", None) or fields.pop("error_message", None)
        data, ids = {"error": error or ""}, {"attempt": _attempt(fields.pop("attempt", None))}
    else:
        data, ids = {"reason": fields.pop("reason", None)}, {}
    _none(fields)
    return trigger, data, ids


def _trigger_for(status: str) -> str:
    try:
        return STATUS_TRIGGERS[State(status)]
    except (ValueError, KeyError):
        allowed = ", ".join(s.value for s in STATUS_TRIGGERS)
        if status in {s.value for s in State}:
            raise InvalidTransition(f"update_job_status({status})", status,
                                    allowed=ALLOWED_TRIGGERS[State(status)],
                                    reason=f"status can be set to {allowed}") from None
        raise ValidationError(f"status must be one of {allowed}", field="status") from None


def _none(fields: dict[str, Any]) -> dict[str, Any]:
    """Leftover keyword arguments are refused by name."""
    if fields:
        name = sorted(fields)[0]
        raise ValidationError(f"unexpected field {name!r} for this status", field=name)
    return {}


def _attempt(value: Any, *, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("attempt must be the positive integer returned by start_processing", field="attempt")
    return value
