"""Health of the moving parts: database, projector lag, stuck detector, pools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from store.faults import ProjectorFault, get_fault
from store.projections import find_stuck_jobs, get_checkpoint, sample_lag

from .session import InProcessListeners

PROJECTOR = "main"  # the projector's name (its checkpoint and lease)


@dataclass(frozen=True, slots=True)
class Health:
    """What `health()` found. The database answered, or `health()` raised DatabaseUnavailable."""

    projector_started: bool           # a checkpoint exists: some projector has run
    events_behind: int                # committed events the projection has not applied
    seconds_behind: float             # age of the oldest of them
    held_events: int                  # events waiting behind an open transaction (the horizon)
    overdue_jobs: int                 # processing jobs idle for twice the stuck timeout
    listeners_in_process: bool        # this process runs the projector and detector
    detector_running: bool | None     # None when the detector runs elsewhere
    projector_fault: ProjectorFault | None = None  # where the projector is stopped (listeners/faults.py)
    held_seconds: float = 0.0         # age of the oldest held event: how long the horizon has been held
    blocking_pid: int | None = None   # the backend whose open transaction holds the horizon
    blocking_state: str | None = None            # its state, when this role may see it
    blocking_xact_seconds: float | None = None   # its transaction's age, when this role may see it
    projector_leader: bool | None = None         # this process's projector leads (None: it runs elsewhere)
    projector_backend_pid: int | None = None     # the server pid of this process's projector connection


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """One connection pool's size, idle connections and maximum."""

    name: str
    size: int
    idle: int
    max_size: int

    @property
    def in_use(self) -> int:
        return self.size - self.idle

    @classmethod
    def of(cls, name: str, pool: Any) -> PoolUsage:
        return cls(name, pool.get_size(), pool.get_idle_size(), pool.get_max_size())


async def probe_health(conn: Any, stuck_timeout: float, listeners: InProcessListeners | None) -> Health:
    """The projection's lag, where it is stopped, and jobs overdue by twice the stuck timeout, read on `conn`."""
    checkpoint = await get_checkpoint(conn, PROJECTOR)
    lag = await sample_lag(conn, checkpoint.cursor if checkpoint else (0, 0))
    overdue = await find_stuck_jobs(conn, stuck_timeout * 2, 100)
    fault = await get_fault(conn, PROJECTOR)
    return Health(projector_started=checkpoint is not None, events_behind=lag.events_behind,
                  seconds_behind=lag.seconds_behind, held_events=lag.held_events, overdue_jobs=len(overdue),
                  listeners_in_process=listeners is not None, projector_fault=fault,
                  detector_running=listeners.detector_running if listeners is not None else None,
                  held_seconds=lag.held_seconds, blocking_pid=lag.blocking_pid,
                  blocking_state=lag.blocking_state, blocking_xact_seconds=lag.blocking_xact_seconds,
                  projector_leader=listeners.projector_leader if listeners is not None else None,
                  projector_backend_pid=listeners.projector_backend_pid if listeners is not None else None)
