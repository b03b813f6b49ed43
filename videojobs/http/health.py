"""Health and gauges: database reachable, projector lag, detector keeping up, pool use.

The manager has no public health API yet, so this reads through store's named
queries (no SQL here) on the manager's service pool. A stuck-job detector that
runs is visible from outside by its effect: no processing job stays idle for much
longer than the stuck timeout. Jobs idle for twice the timeout mean it is not
running (or not keeping up), and the report says so.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from store.projections import find_stuck_jobs, get_checkpoint, sample_lag
from videojobs import VideoJobManager

from .problems import is_database_unavailable

PROJECTOR = "main"
PROBE_TIMEOUT_SECONDS = 5.0
LAG_DEGRADED_SECONDS = 30.0


class ComponentHealth(BaseModel):
    """One component's status and figures."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "down", "unknown"]
    detail: str | None = None


class HealthReport(BaseModel):
    """`GET /healthz`: ok (200), degraded (200) or down (503, when the database is unreachable)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "database": {"status": "ok"},
        "projector": {"status": "ok", "events_behind": 0, "seconds_behind": 0.0},
        "detector": {"status": "ok", "overdue_jobs": 0, "stuck_timeout_seconds": 900.0}}]})

    status: Literal["ok", "degraded", "down"]
    database: ComponentHealth
    projector: ComponentHealth
    detector: ComponentHealth


def service_pool(manager: VideoJobManager) -> Any:
    """The manager's service pool (no public accessor yet: see the report of issue 6)."""
    return getattr(manager, "pool", None) or getattr(manager, "_pool", None)


def user_pool(manager: VideoJobManager) -> Any:
    """The manager's end-user pool."""
    return getattr(manager, "user_pool", None) or getattr(manager, "_user_pool", None)


async def check_health(manager: VideoJobManager | None, stuck_timeout: float) -> HealthReport:
    """Probe the database, the projector's lag and the detector's effect, bounded in time."""
    if manager is None:
        down = ComponentHealth(status="down", detail="not connected")
        unknown = ComponentHealth(status="unknown")
        return HealthReport(status="down", database=down, projector=unknown, detector=unknown)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            projector, detector = await _probe(service_pool(manager), stuck_timeout)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        down = ComponentHealth(status="down", detail="database unreachable")
        unknown = ComponentHealth(status="unknown")
        return HealthReport(status="down", database=down, projector=unknown, detector=unknown)
    overall = "ok" if projector.status == detector.status == "ok" else "degraded"
    return HealthReport(status=overall, database=ComponentHealth(status="ok"), projector=projector,
                        detector=detector)


async def _probe(pool: Any, stuck_timeout: float) -> tuple[ComponentHealth, ComponentHealth]:
    async with pool.acquire() as conn:
        checkpoint = await get_checkpoint(conn, PROJECTOR)
        lag = await sample_lag(conn, checkpoint.cursor if checkpoint else (0, 0))
        overdue = await find_stuck_jobs(conn, stuck_timeout * 2, 100)
    lagging = checkpoint is None or lag.seconds_behind > LAG_DEGRADED_SECONDS
    projector = ComponentHealth(status="degraded" if lagging else "ok", events_behind=lag.events_behind,
                                seconds_behind=round(lag.seconds_behind, 3), held_events=lag.held_events,
                                detail="never ran" if checkpoint is None else None)
    detector = ComponentHealth(status="degraded" if overdue else "ok", overdue_jobs=len(overdue),
                               stuck_timeout_seconds=stuck_timeout,
                               detail="processing jobs idle for twice the stuck timeout" if overdue else None)
    return projector, detector
