"""Operations: `GET /healthz` and `GET /metrics` (no token: bind them to a private network)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from videojobs.errors import is_unavailable

from ..dependencies import State
from ..health import HealthReport, check_health
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
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _refresh(state: AppState) -> None:
    manager, metrics = state.manager, state.metrics
    metrics.observe_feed_hub(state.feed_hub)
    if manager is None:
        return
    for usage in manager.maintenance.pool_usage():
        metrics.observe_pool(usage)
    metrics.observe_transition_totals(await manager.maintenance.transition_counts())
    stats = await manager.get_job_stats(days=1)
    for status in ("queued", "processing", "completed", "failed", "cancelled"):
        metrics.jobs.labels(status=status).set(getattr(stats, f"{status}_jobs"))
    report = await check_health(manager, state.settings.stuck_timeout_seconds)
    metrics.lag_events.set(getattr(report.projector, "events_behind", 0) or 0)
    metrics.lag_seconds.set(getattr(report.projector, "seconds_behind", 0.0) or 0.0)
    metrics.observe_stop(getattr(report.projector, "stopped", None))
    metrics.observe_horizon(getattr(report.projector, "horizon", None))
    metrics.observe_workers(await manager.workers.list(REGISTRY_SCRAPE_LIMIT), state.worker_waits.waiting)
    metrics.observe_queue(await manager.maintenance.queue_depth())
    metrics.observe_pauses((await manager.queue.policy()).pauses)
