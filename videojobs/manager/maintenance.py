"""The maintenance service: reset stuck jobs, rebuild and verify the projections, see and end a projector's
stop, and the health of the moving parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from listeners import DetectorResult, StuckDetector, StuckDetectorConfig
from statemachine import ValidationError
from store import Event
from store.audit import last_cursor
from store.faults import ProjectorFault, get_fault, void_event
from store.identity import PROJECTOR as PROJECTOR_ROLE
from store.leases import QueueDepth, queue_depth
from store.projections import (
    LagSample,
    RebuildResult,
    StuckJob,
    VerifyResult,
    find_stuck_jobs,
    get_checkpoint,
    get_leadership,
    rebuild_projections,
    sample_lag,
    transition_counts,
    verify_projections,
)

from .deployment import DeploymentStatus, read_lease_view, session_groups
from .health import PROJECTOR, Health, PoolUsage, probe_health
from .session import Session, translated_call

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where a projector is: its checkpoint, how far behind, and where it is stopped (None while it projects)."""

    name: str
    started: bool                      # a checkpoint exists
    cursor: tuple[int, int]            # (xact_id, position) of the last applied event
    events: int                        # events applied in all
    change_seq: int                    # the newest change-feed number
    events_behind: int
    seconds_behind: float
    fault: ProjectorFault | None       # the event it cannot apply (listeners/faults.py)
    horizon: LagSample | None = None   # while an open transaction holds committed events back: its pid, age
    leader: dict | None = None         # the projector's lease (holder_pid, live, ...); None if not readable


class Maintenance:
    """reset_stuck_jobs, projections (rebuild, verify, status, wait), void_event, health, counters."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def reset_stuck_jobs(self, older_than: timedelta | float = timedelta(minutes=15)) -> DetectorResult:
        """Time out processing jobs idle for longer than `older_than` (re-queued, or failed when out of attempts)."""
        seconds = _older_than_seconds(older_than)
        await self._session.read_your_writes()
        detector = StuckDetector(self._session.runtime.service_pool, StuckDetectorConfig(timeout=float(seconds)))
        result = await translated_call(detector.run_once())
        if result.reset:  # its time_out events were not written through this manager: wait for them too
            async with self._session.connection() as conn:
                cursor = await last_cursor(conn)
            if cursor:
                self._session.remember(cursor)
        return result

    async def stuck_jobs(self, older_than: timedelta | float = timedelta(minutes=15), limit: int = 100) -> list[StuckJob]:
        """Processing jobs idle for longer than `older_than`, oldest first, that the caller may see (what
        `reset_stuck_jobs` would time out; a job a worker holds a lease on is left to its lease)."""
        seconds = _older_than_seconds(older_than)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit must be between 1 and 1000", field="limit")
        async with self._session.connection() as conn:
            return await find_stuck_jobs(conn, seconds, limit)

    async def rebuild_projections(self) -> RebuildResult:
        """Replay every event into fresh tables and swap them in; readers are never blocked."""
        return await translated_call(rebuild_projections(self._session.runtime.database_url))

    async def verify_projections(self, limit: int = 100) -> VerifyResult:
        """Compare the live projection with a replay and the stats with a recount (at most `limit`
        differences), and say how many events wait after the checkpoint and whether a projector runs.

        Runs as the projector's role, which reads every event and the lease: a login that may not
        act as it is refused (AccessDenied naming the GRANT), where reading under another role's
        rules would replay a part of the log and call it ok.
        """
        await self._session.read_your_writes()
        return await translated_call(verify_projections(self._session.runtime.database_url, limit=limit, role=PROJECTOR_ROLE))

    async def projection_status(self, name: str = PROJECTOR) -> ProjectionStatus:
        """The projector's checkpoint, lag, and the event it is stopped at, if any (`vjm projections status`)."""
        async with self._session.connection() as conn:
            return await _status(conn, name)

    async def deployment_status(self, name: str = PROJECTOR) -> DeploymentStatus:
        """Which process leads projector `name` and which stand by (what each said of itself: process,
        application_name, client address), how far the projection is behind the log, and the client
        sessions on the database by application_name (`vjm status`). The lease and the candidates need
        a role that may read them (vjm_admin); for others they are None."""
        async with self._session.connection() as conn:
            projection = await _status(conn, name)
            leader, candidates = await read_lease_view(conn, name)
            sessions = await session_groups(conn)
        return DeploymentStatus(projection, leader, candidates, sessions)

    async def wait_for_projection(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - returns False
        """Wait (woken by the projector's notices, never by sleeping) until the read models have applied
        every event committed so far, whoever wrote it; True when they have, False after `timeout`
        seconds (default: the manager's consistency_timeout)."""
        async with self._session.service_connection() as conn:
            cursor = await last_cursor(conn)
        runtime = self._session.runtime
        if cursor is None or runtime.watcher is None:
            return True
        return await runtime.watcher.wait_for(cursor, timeout if timeout is not None else runtime.consistency_timeout)

    async def transition_counts(self) -> dict[str, int]:
        """Events applied to the read models so far, by type (the projector's counters; for monitoring)."""
        async with self._session.service_connection() as conn:
            return await transition_counts(conn)

    async def queue_depth(self) -> list[QueueDepth]:
        """The run queue by platform and priority, asked as the trusted service (for monitoring: counts only)."""
        async with self._session.service_connection() as conn:
            return await queue_depth(conn)

    async def projection_behind(self, name: str = PROJECTOR) -> ProjectionStatus:
        """projection_status asked as the trusted service whoever the caller: counts and the lease, no
        tenant data. A reader whose answer comes from the read models (a list of 0 jobs from a
        projection that never ran) uses it to say that the answer is behind the log."""
        async with self._session.service_connection() as conn:
            return await _status(conn, name)

    async def health(self, stuck_timeout: float) -> Health:
        """Probe the projection's lag and the detector's effect (jobs idle for 2x the stuck timeout)."""
        async with self._session.connection() as conn:
            return await probe_health(conn, stuck_timeout, self._session.runtime.listeners)

    def pool_usage(self) -> list[PoolUsage]:
        """Size, idle and maximum connections of this runtime's pools (for monitoring)."""
        runtime = self._session.runtime
        pools = [PoolUsage.of("service", runtime.service_pool), PoolUsage.of("users", runtime.user_pool)]
        if (replica := runtime.replica) is not None:  # the standby's (VJM_READ_DATABASE_URL)
            pools += [PoolUsage.of("replica_service", replica.service_pool),
                      PoolUsage.of("replica_users", replica.user_pool)]
        return pools

    async def void_event(self, position: int, reason: str) -> Event:
        """Admins: void the event at `position` so that the read models skip it (vjm.void_event).

        Its payload is skipped, its state change stands; a voided create hides the job. The
        log keeps both the event and the `void` (appended to the same job). Refused for an
        event a projection has already applied, a void, or an event voided already.
        """
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position < 2**63:
            raise ValidationError("position must be a positive event position", field="position")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise ValidationError(f"reason must be 1-{MAX_REASON} characters", field="reason")
        async with self._session.connection() as conn:
            event = await void_event(conn, position, reason)
        self._session.remember(event.cursor)
        return event


def _older_than_seconds(older_than: object) -> float:
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 7 * 86400:
        raise ValidationError("older_than must be between 0 seconds and 7 days", field="older_than")
    return float(seconds)


async def _status(conn, name: str) -> ProjectionStatus:
    """Checkpoint, lag, fault and lease of projector `name`, read on `conn`."""
    checkpoint = await get_checkpoint(conn, name)
    lag = await sample_lag(conn, checkpoint.cursor if checkpoint else (0, 0))
    fault = await get_fault(conn, name)
    leader = await _leadership(conn, name)
    return ProjectionStatus(name=name, started=checkpoint is not None,
                            cursor=checkpoint.cursor if checkpoint else (0, 0),
                            events=checkpoint.events if checkpoint else 0,
                            change_seq=checkpoint.change_seq if checkpoint else 0,
                            events_behind=lag.events_behind, seconds_behind=lag.seconds_behind, fault=fault,
                            horizon=lag if lag.held_events else None, leader=leader)


async def _leadership(conn, name: str) -> dict | None:
    """Who holds the projector's lease; None for a role that may not read vjm.projector_leases (admins may)."""
    try:
        async with conn.transaction():  # a refusal must not abort the caller's transaction
            return await get_leadership(conn, name)
    except asyncpg.InsufficientPrivilegeError:
        return None

