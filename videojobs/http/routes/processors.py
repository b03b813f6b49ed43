"""What video workers call (service_role tokens): claim, progress, complete, fail, requeue, release, with the
attempt token."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Path, Request

from videojobs import Job

from ..dependencies import ServiceManager, State
from ..long_poll import claim_held
from ..schemas import (
    ClaimRequest,
    ClaimResponse,
    CompleteBatchRequest,
    CompleteBatchResponse,
    CompleteRequest,
    FailRequest,
    ProgressRequest,
)
from ..worker_schemas import ReleaseRequest, RequeueRequest
from .common import hold_for, problems

router = APIRouter(prefix="/api/v1/processor/jobs", tags=["processors"])
JobId = Annotated[UUID, Path(description="The job id")]


@router.post("/claim", response_model=ClaimResponse, summary="Claim queued jobs (long poll with `wait`)",
             responses=problems(403, 413))
async def claim(request: Annotated[ClaimRequest, Body()], manager: ServiceManager, state: State,
                http: Request) -> ClaimResponse:
    """Start up to `limit` queued jobs for the worker, oldest first; two workers never get the same job.

    With `wait`, an empty queue holds the answer until a job is queued (the change feed wakes it; it
    also checks every second, e.g. for a job whose requeue delay ran out), at most `wait` seconds, or
    the server's cap (VJM_HTTP_MAX_WAIT): then it answers with no jobs. With `lease_seconds`, each job
    started holds a lease that the worker renews (`POST /api/v1/processor/heartbeat`)."""
    return ClaimResponse(attempts=await claim_held(manager, request, hold_for(state, http, request.wait)))


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
                                         phase=request.phase, actor=request.worker_id)


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


@router.post("/{job_id}/requeue", response_model=Job, summary="Give an attempt back to be tried later",
             responses=problems(403, 404, 409, 413))
async def requeue(job_id: JobId, request: Annotated[RequeueRequest, Body()], manager: ServiceManager) -> Job:
    """Queue the job again, not claimable for `retry_after` seconds; this uses up the attempt (with none
    left the job fails). The event names the worker that started the attempt. 409 (stale-attempt) if the
    attempt is no longer the job's current one."""
    return await manager.processors.requeue_job(job_id, request.attempt, error=request.error,
                                                retry_after=request.retry_after)


@router.post("/{job_id}/release", response_model=Job, summary="Give an unfinished attempt back",
             responses=problems(403, 404, 409, 413))
async def release(job_id: JobId, request: Annotated[ReleaseRequest, Body()], manager: ServiceManager) -> Job:
    """Queue the job again at once and give its attempt back (a worker shutting down). The event names the
    worker that started the attempt. 409 (stale-attempt) if the attempt is no longer the job's current one."""
    return await manager.processors.release_job(job_id, request.attempt, reason=request.reason)
