"""One job: create, read (now or as of an instant), change, delete, and its audit history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Header, Path, Query, Response, status

from videojobs import AccessDenied, Job, ValidationError, VideoJobManager
from videojobs.models import MAX_REASON, METADATA_FIELDS, Trigger

from .. import idempotency
from ..dependencies import CallerAndManager, Manager
from ..patch_body import MOVE_FIELDS, PatchJobRequest
from ..payload_types import payload_pattern
from ..schemas import JOB_EXAMPLE, CreateJobRequest, JobHistory, RescheduleRequest
from .common import problems

router = APIRouter(prefix="/api/v1", tags=["jobs"])
JobId = Annotated[UUID, Path(description="The job id", examples=["9b2f6c1e-3f7a-4d1e-9a57-0c4f2b1d8e11"])]
STATUS_FIELDS = ("reason", "worker_id", "output_paths", "processing_time", "error", "attempt")
_JOB_EXAMPLE = {"content": {"application/json": {"example": JOB_EXAMPLE}}}


@router.post("/process", status_code=status.HTTP_201_CREATED, response_model=Job, summary="Create a job",
             responses={201: _JOB_EXAMPLE, **problems(403, 404, 409, 413)})
async def create_job(request: Annotated[CreateJobRequest, Body()], caller: CallerAndManager,
                     idempotency_key: Annotated[str | None, Header(
                         alias=idempotency.HEADER, max_length=idempotency.HEADER_MAX_LENGTH,
                         json_schema_extra={"pattern": idempotency.HEADER_PATTERN},
                         description=idempotency.HEADER_DESCRIPTION)] = None) -> Response:
    """Create a job in status `queued` (201, with a Location header).

    With an idempotency key (the `Idempotency-Key` header, or the body's `idempotency_key`), a retry
    is safe: the same key from the same user within 24 hours answers as the first request did (201,
    the job as it was created) and creates nothing; the same key with a different body is refused
    (422, `idempotency-key-reused`); a request while another with the key is still in progress gets
    409 (`idempotency-key-in-use`, send it again later).
    """
    fields = request.model_dump(exclude={"user_id", "idempotency_key"}, mode="json")
    key = idempotency.request_key(idempotency_key, request.idempotency_key)
    job = await caller.manager.create_job(user_id=_owner(request.user_id, caller.who), idempotency_key=key,
                                          key_wait=idempotency.KEY_WAIT_SECONDS if key is not None else None,
                                          **fields)
    # The Job as its response model dumps it, sent as is: FastAPI would validate it against Job again.
    return Response(job.model_dump_json(), status_code=status.HTTP_201_CREATED, media_type="application/json",
                    headers={"Location": f"/api/v1/jobs/{job.job_id}"})


def _owner(user_id: str | None, who: Any) -> str:
    if who.is_service:
        if user_id is None:
            raise ValidationError("service callers must name the job's user_id", field="user_id")
        return user_id
    if user_id is not None and user_id != who.sub:
        raise AccessDenied("end users create jobs for themselves only")
    return who.sub


@router.get("/jobs/{job_id}", response_model=Job, summary="Get a job (optionally as it was at an instant)",
            responses={200: _JOB_EXAMPLE, **problems(403, 404)})
async def get_job(job_id: JobId, manager: Manager,
                  as_of: Annotated[datetime | None, Query(description="An instant (ISO 8601); the job as it "
                                                          "was then, replayed from its events")] = None) -> Job:
    """The job now, or replayed to `as_of`; 404 if it does not exist (then) or the caller may not see it."""
    if as_of is not None:
        return await manager.audit.job_as_of(job_id, as_of)
    return await manager.get_job_by_id(job_id)  # as it is now, projected or not


@router.patch("/jobs/{job_id}", response_model=Job, summary="Change a job's status or metadata",
              responses={200: _JOB_EXAMPLE, **problems(403, 404, 409, 413)})
async def patch_job(job_id: JobId, request: Annotated[PatchJobRequest, Body()], manager: Manager) -> Job:
    """A status change through the state machine, or a metadata change; never both in one request.

    The body is held to the document's union (patch_body.PATCH_JOB_BODY) by the fields it names,
    null or not: a move takes `status` and that move's fields, a metadata change no `status`.
    """
    if "status" in request.model_fields_set:
        return await _patch_status(manager, job_id, request)
    return await _patch_metadata(manager, job_id, request)


async def _patch_status(manager: VideoJobManager, job_id: UUID, request: PatchJobRequest) -> Job:
    if request.status is None:
        raise ValidationError("status must not be null (leave it out to change metadata)", field="status")
    stray = sorted(request.model_fields_set - {"status"} - MOVE_FIELDS[request.status])
    if stray:
        both = stray[0] in METADATA_FIELDS or stray[0] == "expected_version"
        raise ValidationError("change the status or the metadata, not both" if both
                              else f"{stray[0]} does not go with status {request.status}", field=stray[0])
    given = request.model_dump(exclude_none=True, mode="json")
    return await manager.update_job_status(job_id, request.status, **{k: given[k] for k in STATUS_FIELDS if k in given})


async def _patch_metadata(manager: VideoJobManager, job_id: UUID, request: PatchJobRequest) -> Job:
    sent, given = request.model_fields_set, request.model_dump(exclude_none=True, mode="json")
    stray = sorted(sent & set(STATUS_FIELDS))
    if stray:
        raise ValidationError(f"{stray[0]} goes with a status change", field=stray[0])
    nulls = sorted(name for name in sent & set(METADATA_FIELDS) if name not in given)
    if nulls:  # the document's metadata fields are not nullable: leave a field out instead
        raise ValidationError(f"{nulls[0]} must not be null (leave it out to keep it)", field=nulls[0])
    metadata = {k: v for k, v in given.items() if k in METADATA_FIELDS}
    if not metadata:
        raise ValidationError("give a status or at least one metadata field", field="status")
    return await manager.update_job_metadata(job_id, expected_version=request.expected_version, **metadata)


@router.post("/jobs/{job_id}/reschedule", response_model=Job, summary="Change a queued job's priority or run_at",
             responses=problems(403, 404, 409))
async def reschedule_job(job_id: JobId, request: Annotated[RescheduleRequest, Body()], manager: Manager) -> Job:
    """A `reschedule` event: the job's new place in the claim order (queued jobs only: 409 otherwise)."""
    given = request.model_dump(exclude_none=True, mode="json")
    if "priority" not in given and "run_at" not in given:
        raise ValidationError("give a priority, a run_at or both", field="priority")
    return await manager.reschedule_job(job_id, priority=given.get("priority"), run_at=given.get("run_at"),
                                        expected_version=request.expected_version)


@router.delete("/jobs/{job_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Delete a job (a tombstone; its history stays)", responses=problems(403, 404, 409))
async def delete_job(job_id: JobId, manager: Manager,
                     reason: Annotated[str | None, Query(max_length=MAX_REASON, json_schema_extra={
                         "pattern": payload_pattern(Trigger.DELETE, "reason")})] = None) -> Response:
    """Delete the job: it leaves the job lists; auditors still read its events."""
    await manager.delete_job(job_id, reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/jobs/{job_id}/events", response_model=JobHistory, summary="A job's audit history",
            responses=problems(403, 404))
async def job_events(job_id: JobId, manager: Manager) -> JobHistory:
    """Every event of the job in order: type, from/to state, actor, time and data.

    A deleted job's history stays readable (200, its last event the delete): the audit trail
    outlives the job, which `GET /jobs/{job_id}` no longer shows (404).
    """
    return JobHistory(job_id=job_id, events=await manager.get_job_history(job_id))
