"""Admin (service_role tokens): maintenance, one action per request; the worker registry."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query

from videojobs import VideoJobManager

from ..admin_schemas import (
    BulkUpdate,
    MaintenanceRequest,
    MaintenanceResponse,
    ResetStuck,
    VerifyHistory,
)
from ..dependencies import ServiceManager
from ..worker_schemas import WorkerList
from .common import problems

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.post("/jobs/maintenance", response_model=MaintenanceResponse, summary="Run a maintenance action",
             responses=problems(403, 404, 413))
async def maintenance(request: Annotated[MaintenanceRequest, Body()], manager: ServiceManager,
                      ) -> MaintenanceResponse:
    """reset_stuck, bulk_update, rebuild_projections, verify_projections or verify_history."""
    ok, result = await _run(manager, request)
    return MaintenanceResponse(action=request.action, ok=ok, result=result)


@router.get("/workers", response_model=WorkerList, summary="The worker registry", responses=problems(403))
async def workers(manager: ServiceManager,
                  limit: Annotated[int, Query(ge=1, le=1000, description="At most this many workers")] = 500,
                  ) -> WorkerList:
    """Every registered worker, running ones first: host, pid, slots and jobs running, platforms, version,
    when started and last heard from, and its state (`lost`: no heartbeat for three leases)."""
    return WorkerList(workers=await manager.workers.list(limit))


async def _run(manager: VideoJobManager, request: Any) -> tuple[bool, dict[str, Any]]:
    if isinstance(request, ResetStuck):
        outcome = await manager.maintenance.reset_stuck_jobs(request.older_than_seconds)
        return True, {**_plain(outcome), "reset": outcome.reset}
    if isinstance(request, BulkUpdate):
        fields = {k: v for k, v in (("reason", request.reason), ("error", request.error)) if v is not None}
        results = await manager.bulk_update_status(list[UUID | str](request.job_ids), request.status, **fields)
        items = [r.model_dump(mode="json") for r in results]
        return all(r.ok for r in results), {"results": items, "applied": sum(r.ok for r in results)}
    if isinstance(request, VerifyHistory):
        report = await manager.audit.verify_history(request.job_id)
        return report.ok, report.model_dump(mode="json")
    if request.action == "rebuild_projections":
        rebuilt = await manager.maintenance.rebuild_projections()
        return True, {**_plain(rebuilt), "events_per_second": _finite(rebuilt.events_per_second)}
    verified = await manager.maintenance.verify_projections()
    return verified.ok, {**_plain(verified), "ok": verified.ok}


def _plain(result: Any) -> dict[str, Any]:
    """A dataclass result as JSON-ready data."""
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(dataclasses.asdict(result))


def _finite(value: float) -> float | None:
    return value if value != float("inf") else None
