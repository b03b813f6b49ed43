"""Operations: `GET /healthz` and `GET /metrics` (no token: bind them to a private network)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from videojobs.errors import is_unavailable

from ..dependencies import State
from ..health import HealthReport, check_health
from ..metrics_figures import Figures
from ..state import AppState

log = structlog.get_logger("vjm.http")
router = APIRouter(tags=["operations"])
REGISTRY_SCRAPE_LIMIT = 10_000  # the worker gauges count up to this many registered workers


@router.get("/healthz", response_model=HealthReport, summary="Health: database, projector lag, detector",
            responses={503: {"model": HealthReport, "description": "The database is unreachable"}})
async def healthz(state: State) -> JSONResponse:
    """200 when the database answers (status ok or degraded); 503 with Retry-After when it does not."""
    report = await check_health(state.manager, state.settings.stuck_timeout_seconds)
    if report.status == "down":
        return JSONResponse(report.model_dump(mode="json"), status_code=503,
                            headers={"Retry-After": str(state.options.retry_after_seconds)})
    return JSONResponse(report.model_dump(mode="json"))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"}})
async def metrics(state: State) -> Response:
    """Request latency, transitions by type, stuck resets, projector lag, jobs by status, pool use, workers,
    the run queue and its pauses."""
    try:
        await _refresh(state)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("metrics_database_unavailable", error=repr(exc)[:200])
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


async def _refresh(state: AppState) -> None:
    manager, metrics = state.manager, state.metrics
    state.observe_process()
    if manager is None:
        return
    figures = Figures()
    figures.transitions(await manager.maintenance.transition_counts())
    figures.jobs(await manager.get_job_stats(days=1))
    figures.projector((await check_health(manager, state.settings.stuck_timeout_seconds)).projector)
    figures.workers(await manager.workers.list(REGISTRY_SCRAPE_LIMIT))
    figures.queue(await manager.maintenance.queue_depth(), (await manager.queue.policy()).pauses)
    metrics.observe_database(figures)
