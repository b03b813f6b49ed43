"""What the worker runtime calls besides its jobs (service_role tokens): the heartbeat that keeps its
leases and tells it which jobs it lost, and its row of the worker registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from videojobs.manager.workers import WorkerBeat

from ..dependencies import ServiceManager, State
from ..long_poll import heartbeat_held
from ..worker_schemas import HeartbeatRequest, HeartbeatResponse, WorkerBeatRequest
from .common import hold_for, problems

router = APIRouter(prefix="/api/v1/processor", tags=["processors"])


@router.post("/heartbeat", response_model=HeartbeatResponse, summary="Renew leases; learn which jobs were lost",
             responses=problems(403, 413))
async def heartbeat(request: Annotated[HeartbeatRequest, Body()], manager: ServiceManager, state: State,
                    http: Request) -> HeartbeatResponse:
    """Renew the worker's leases, each for its `seconds` from now (in place: no event). `lost` names the
    jobs no longer this worker's attempt (cancelled, deleted, timed out, re-run): stop their work, report
    nothing. With `wait`, while none is lost the answer is held until one of the jobs leaves `processing`
    (the change feed says so; the leases are then renewed again), at most `wait` seconds or the server's
    cap (VJM_HTTP_MAX_WAIT): this is how cancellation reaches a worker over HTTP."""
    return await heartbeat_held(manager, request, hold_for(state, http, request.wait))


@router.post("/workers", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             summary="Register a worker, or refresh its registry row", responses=problems(403, 413))
async def worker_beat(request: Annotated[WorkerBeatRequest, Body()], manager: ServiceManager) -> Response:
    """Upsert the worker's row of the registry (in place: no event): alive now, with `running` jobs; with
    `stopped`, it stopped gracefully. One not heard from for three leases is listed as lost."""
    platforms = [p.value for p in request.platforms] if request.platforms is not None else None
    await manager.workers.beat(WorkerBeat(worker_id=request.worker_id, host=request.host, pid=request.pid,
                                          concurrency=request.concurrency, running=request.running,
                                          platforms=platforms, version=request.version,
                                          lease_seconds=request.lease_seconds, stopped=request.stopped))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
