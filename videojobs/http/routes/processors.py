"""What video workers call (service_role tokens): claim, progress, complete, fail, with the attempt token."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Path

from videojobs import Job

from ..dependencies import ServiceManager
from ..schemas import (
    ClaimRequest,
    ClaimResponse,
    CompleteBatchRequest,
    CompleteBatchResponse,
    CompleteRequest,
    FailRequest,
    ProgressRequest,
)
from .common import problems

router = APIRouter(prefix="/api/v1/processor/jobs", tags=["processors"])
JobId = Annotated[UUID, Path(description="The job id")]


@router.post("/claim", response_model=ClaimResponse, summary="Claim queued jobs",
             responses=problems(403, 413))
async def claim(request: Annotated[ClaimRequest, Body()], manager: ServiceManager) -> ClaimResponse:
    """Start up to `limit` queued jobs for the worker, oldest first; two workers never get the same job."""
    attempts = await manager.claim_jobs(request.worker_id, request.limit,
                                        request.platform_target.value if request.platform_target else None)
    return ClaimResponse(attempts=attempts)


@router.post("/complete", response_model=CompleteBatchResponse, summary="Complete many attempts at once",
             responses=problems(403, 413))
async def complete_batch(request: Annotated[CompleteBatchRequest, Body()],
                         manager: ServiceManager) -> CompleteBatchResponse:
    """Report a batch of finished attempts in one request (one commit per 50 jobs).

    Each completion is judged on its own: the answer has a result per completion, in
    order, and a stale attempt or a job that is no longer processing does not stop the others.
    """
    results = await manager.complete_jobs(
        [{"job_id": c.job_id, "attempt": c.attempt, "output_paths": c.output_paths,
          "processing_time": c.processing_time} for c in request.completions],
        actor=request.worker_id)
    return CompleteBatchResponse(results=results, applied=sum(r.ok for r in results))


@router.post("/{job_id}/progress", response_model=Job, summary="Report progress of an attempt",
             responses=problems(403, 404, 409, 413))
async def progress(job_id: JobId, request: Annotated[ProgressRequest, Body()],
                   manager: ServiceManager) -> Job:
    """Record progress; 409 (stale-attempt) if the attempt is no longer the job's current one."""
    return await manager.report_progress(job_id, request.attempt, request.percent, request.clips_done,
                                         actor=request.worker_id)


@router.post("/{job_id}/complete", response_model=Job, summary="Complete an attempt",
             responses=problems(403, 404, 409, 413))
async def complete(job_id: JobId, request: Annotated[CompleteRequest, Body()],
                   manager: ServiceManager) -> Job:
    """Mark the job completed with its outputs; a late complete for a reset attempt gets 409."""
    return await manager.complete_job(job_id, request.output_paths, request.processing_time, request.attempt,
                                      actor=request.worker_id)


@router.post("/{job_id}/fail", response_model=Job, summary="Fail an attempt",
             responses=problems(403, 404, 409, 413))
async def fail(job_id: JobId, request: Annotated[FailRequest, Body()],
               manager: ServiceManager) -> Job:
    """Fail the attempt: the job becomes `failed` (retry queues it again with a fresh budget)."""
    return await manager.fail_job(job_id, request.error, request.attempt, actor=request.worker_id)
