"""Health and gauges: database reachable, projector lag, detector keeping up, pool use.

The figures come from the manager's maintenance.health(). A stuck-job detector is visible
from outside by its effect: no processing job stays idle for much longer than the
stuck timeout. Jobs idle for twice the timeout mean it is not running (or not
keeping up); an in-process detector also reports whether its loop is alive.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from videojobs import VideoJobManager
from videojobs.errors import is_unavailable
from videojobs.manager import Health

PROBE_TIMEOUT_SECONDS = 5.0
LAG_DEGRADED_SECONDS = 30.0
HORIZON_DEGRADED_SECONDS = 5.0  # an open transaction that held committed events back this long


class ComponentHealth(BaseModel):
    """One component's status and figures."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "down", "unknown"]
    detail: str | None = None


class ProcessHealth(BaseModel):
    """Which process answered (`vjm up --workers N` runs N behind one port) and whether its projector leads."""

    pid: int
    projector_leader: bool | None = None       # None: no projector runs in this process (`vjm listen` elsewhere)
    projector_backend_pid: int | None = None   # its connection's server pid: vjm.projector_leases.holder_pid


def this_process(found: Health) -> ProcessHealth:
    """This process's pid and whether its projector leads."""
    return ProcessHealth(pid=os.getpid(), projector_leader=found.projector_leader,
                         projector_backend_pid=found.projector_backend_pid)


class HealthReport(BaseModel):
    """`GET /healthz`: ok (200), degraded (200) or down (503, when the database is unreachable)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "database": {"status": "ok"},
        "projector": {"status": "ok", "events_behind": 0, "seconds_behind": 0.0},
        "detector": {"status": "ok", "overdue_jobs": 0, "stuck_timeout_seconds": 900.0},
        "process": {"pid": 4242, "projector_leader": True, "projector_backend_pid": 31337}}]})

    status: Literal["ok", "degraded", "down"]
    database: ComponentHealth
    projector: ComponentHealth
    detector: ComponentHealth
    process: ProcessHealth = Field(default_factory=lambda: ProcessHealth(pid=os.getpid()))


async def check_health(manager: VideoJobManager | None, stuck_timeout: float) -> HealthReport:
    """Probe the database, the projector's lag and the detector's effect, bounded in time."""
    if manager is None:
        down = ComponentHealth(status="down", detail="not connected")
        unknown = ComponentHealth(status="unknown")
        return HealthReport(status="down", database=down, projector=unknown, detector=unknown)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            found = await manager.maintenance.health(stuck_timeout)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        down = ComponentHealth(status="down", detail="database unreachable")
        unknown = ComponentHealth(status="unknown")
        return HealthReport(status="down", database=down, projector=unknown, detector=unknown)
    projector, detector = _components(found, stuck_timeout)
    overall: Literal["ok", "degraded"] = "ok" if projector.status == detector.status == "ok" else "degraded"
    return HealthReport(status=overall, database=ComponentHealth(status="ok"), projector=projector,
                        detector=detector, process=this_process(found))


def component(**fields: Any) -> ComponentHealth:
    """A component's status, detail and its own figures (the model allows extra fields)."""
    return ComponentHealth.model_validate(fields)


def _stopped(projector: ComponentHealth, fault: Any) -> ComponentHealth:
    """The projector component while it is stopped at an event (listeners/faults.py): degraded, with the event."""
    figures = projector.model_dump(exclude={"status", "detail"})
    stopped = {"position": fault.position, "job_id": str(fault.job_id), "version": fault.version,
               "type": fault.type, "error": fault.error[:500], "since": fault.since.isoformat(),
               "attempts": fault.attempts}
    detail = (f"stopped at event {fault.position} (job {fault.job_id}, {fault.type}), which it cannot apply: "
              f"{fault.error[:200]}; `vjm projections void --position {fault.position} --reason ...` skips it")
    return component(status="degraded", detail=detail, **figures, stopped=stopped)


def _components(found: Health, stuck_timeout: float) -> tuple[ComponentHealth, ComponentHealth]:
    held = found.held_events > 0 and found.held_seconds >= HORIZON_DEGRADED_SECONDS
    lagging = not found.projector_started or found.seconds_behind > LAG_DEGRADED_SECONDS or held
    projector = component(status="degraded" if lagging else "ok", events_behind=found.events_behind,
                                seconds_behind=round(found.seconds_behind, 3), held_events=found.held_events,
                                detail="never ran" if not found.projector_started else
                                _horizon_detail(found) if held else None,
                                horizon=horizon_report(found) if found.held_events else None)
    stopped = found.detector_running is False
    degraded = bool(found.overdue_jobs) or stopped
    detail = ("the in-process detector is not running" if stopped
              else "processing jobs idle for twice the stuck timeout" if found.overdue_jobs else None)
    detector = component(status="degraded" if degraded else "ok", overdue_jobs=found.overdue_jobs,
                               stuck_timeout_seconds=stuck_timeout, running=found.detector_running, detail=detail)
    if found.projector_fault is not None:  # stopped at an event it cannot apply: the position, loudly
        projector = _stopped(projector, found.projector_fault)
    return projector, detector


def horizon_report(found: Health) -> dict[str, Any]:
    """What holds the projection horizon back: the open transaction's pid, its state and age (when visible)."""
    age = found.blocking_xact_seconds
    return {"held": found.held_seconds >= HORIZON_DEGRADED_SECONDS, "held_events": found.held_events,
            "held_seconds": round(found.held_seconds, 3), "blocking_pid": found.blocking_pid,
            "blocking_state": found.blocking_state, "blocking_xact_seconds": None if age is None else round(age, 3)}


def _horizon_detail(found: Health) -> str:
    who = f"pid {found.blocking_pid}" if found.blocking_pid is not None else "an open transaction"
    return (f"horizon held by {who}: {found.held_events} committed events wait behind it "
            f"for {found.held_seconds:.0f}s (end or terminate that transaction)")
