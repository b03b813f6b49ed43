"""The projector: turns vjm.job_events into vjm.jobs, vjm.job_stats and the change feed.

Shape (River style): a validated `ProjectorConfig`, `run_once()` that catches up
and returns a `ProjectionResult` (tests call it directly), and `start()`/`stop()`
around a loop that calls it when woken by `vjm_events` or every `poll_interval`
(NOTIFY is a doorbell and can be lost; polling alone projects everything).

The doorbell (sql/schema/050_locks_and_doorbell.sql): appends ring only while a listener sleeps
holding the doorbell lock, because every notifying commit queues behind the
server's one notify lock. After catching up, the loop arms the doorbell and sleeps
until rung; when it cannot arm because appends are in flight, it polls instead, waiting
(between `busy_poll_interval` and `busy_poll_max`) for about `busy_batch_target` events at
the rate they arrive, and backing off while nothing new turns up: so under load it projects
in batches whose fixed cost is shared, and nobody rings. If it cannot arm for
`horizon_warn_after` seconds with nothing to project, it logs `doorbell_unavailable`
with the sessions that hold the lock.

Leadership: every projector holds one dedicated connection. The active one holds
the lease of its name in vjm.projector_leases (`vjm.try_lead_projector`), a row
only vjm_projector may write, so no other role can squat it (an advisory lock
could be taken by any session). The lease names the leader's backend pid; it
binds while that backend lives and the leader renews it (every `lease_ttl`/3,
also between batches of a long catch-up). Standbys try every `takeover_interval`:
when the leader's backend dies its lease is free at once, when the leader hangs
it is free after `lease_ttl`. A standby logs `projector_standby` with the
holder's pid every `standby_log_interval`; a leader that finds its lease taken
logs `projector_leadership_lost` and stands by. The checkpoint row lock in
listeners/batch.py makes even two simultaneous appliers harmless.

Lag: `lag()` counts committed events after the checkpoint and how old the oldest
is. Events of a transaction that committed *above* the horizon (vjm.projection_horizon) wait until
every older transaction ends; if an idle open transaction holds the horizon back
longer than `horizon_warn_after`, `lag()` logs `projection_horizon_held` with
the blocking backend's pid when it is visible to this role.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from store.application_name import PROJECTOR as PROJECTOR_NAME
from store.faults import ProjectorFault, get_fault
from store.projections import (
    LagSample,
    arm_doorbell,
    discard_plans,
    doorbell_holders,
    ensure_checkpoint,
    get_checkpoint,
    get_leadership,
    prune_changes,
    release_doorbell,
    sample_lag,
    try_lock_leadership,
)

from .batch import BatchFailed, project_batch
from .faults import isolate, resumed
from .listening import ListeningConnection
from .notifications import Doorbell, parse_doorbell
from .projector_config import ProjectionResult, ProjectorConfig, next_busy_wait
from .service import BackgroundService

log = structlog.get_logger("vjm.projector")

__all__ = ["Projector", "ProjectorConfig", "ProjectionResult"]


class Projector(BackgroundService[ProjectionResult]):
    """Projects events into the read models; see the module docstring."""

    # A pass waiting for a server that is gone (its connection retries for an hour) must not hold up a
    # shutdown; a pass cancelled mid-batch rolls back, and the next leader applies the batch again.
    stop_grace = 5.0

    def __init__(self, config: ProjectorConfig):
        super().__init__(interval=config.poll_interval, max_backoff=config.max_backoff)
        self.config = config
        self.name = f"projector:{config.name}"
        channels = ("vjm_events",) if config.listen else ()
        self._listening = ListeningConnection(config.database_url, channels, role=config.role, name=PROJECTOR_NAME,
                                              max_backoff=config.max_backoff, on_notify=self._rang)
        self._lock = asyncio.Lock()
        self._leader_pid: int | None = None
        self._renew_at = 0.0
        self._standby_logged_at: float | None = None
        self._token: asyncio.Event | None = None  # armed before each pass: a doorbell during it is kept
        self._next_lag = self._next_prune = 0.0
        self._busy_wait = config.busy_poll_interval
        self._unarmed_since: float | None = None
        self.cursor: tuple[int, int] | None = None
        self.fault: ProjectorFault | None = None  # where it is stopped (listeners/faults.py)
        self._fault_pid: int | None = None        # the leadership whose stop `fault` reflects
        self.last_lag: LagSample | None = None
        self.last_doorbell: Doorbell | None = None

    def _rang(self, channel: str, payload: str) -> None:
        """A doorbell woke the loop (the listening connection wakes it); keep the newest position it named."""
        doorbell = parse_doorbell(payload)
        if doorbell is None:
            log.warning("doorbell_unrecognised", channel=channel, payload=payload[:200])
        elif self.last_doorbell is None or doorbell.position > self.last_doorbell.position:
            self.last_doorbell = doorbell

    @property
    def is_leader(self) -> bool:
        """True while this projector holds its lease (as of its last renewal) on a live connection."""
        conn = self._listening.connection
        return conn is not None and self._leader_pid == conn.get_server_pid()

    @property
    def backend_pid(self) -> int | None:
        """The server pid of this projector's connection (for monitoring and tests)."""
        conn = self._listening.connection
        return conn.get_server_pid() if conn is not None else None

    async def run_once(self) -> ProjectionResult:
        """Become leader if possible, then apply batches until caught up."""
        async with self._lock:
            conn = await self._listening.ensure()
            if not await self._lead(conn):
                return ProjectionResult(leader=False)
            total = await self._catch_up(conn)
        if total.events:
            log.debug("projection_applied", events=total.events, batches=total.batches, jobs=total.jobs,
                      cursor=list(total.cursor or ()))
        return total

    async def _catch_up(self, conn) -> ProjectionResult:
        """Apply batches (one transaction each) until a batch comes back short or an event cannot be applied."""
        total = ProjectionResult(leader=True, cursor=self.cursor)
        if self._fault_pid != self._leader_pid:  # a new leader learns where the last one stopped
            self.fault, self._fault_pid = await get_fault(conn, self.config.name), self._leader_pid
        while True:
            if time.monotonic() >= self._renew_at and not await self._lead(conn):
                return total  # the lease was lost during a long catch-up: stand by
            size = 1 if self.fault is not None else self.config.batch_size  # stopped: retry that one event
            try:
                batch = await project_batch(conn, self.config.name, batch_size=size,
                                            per_job_limit=self.config.notify_per_job_limit)
            except BatchFailed as failed:
                found = await isolate(conn, self.config.name, failed, per_job_limit=self.config.notify_per_job_limit)
                self.cursor, self.fault = found.cursor or self.cursor, found.fault
                total = ProjectionResult(True, total.events + found.events, total.batches + found.batches,
                                         total.jobs + found.jobs, total.notifications + found.notifications,
                                         self.cursor, found.fault)
                if found.fault is not None:
                    return total
                continue
            self.cursor = batch.cursor
            if batch.events and self.fault is not None:
                await resumed(conn, self.config.name)
                self.fault = None
            total = ProjectionResult(True, total.events + batch.events, total.batches + (batch.events > 0),
                                     total.jobs + batch.jobs, total.notifications + batch.notifications, batch.cursor)
            if batch.events < size:
                return total

    async def _lead(self, conn) -> bool:
        """Take the lease, or renew it when due; False on a standby."""
        pid = conn.get_server_pid()
        if self._leader_pid == pid and time.monotonic() < self._renew_at:
            return True
        ttl = max(self.config.lease_ttl, 3 * self.config.poll_interval)  # a sleeping leader renews on waking
        due = time.monotonic() + ttl / 3
        if not await try_lock_leadership(conn, self.config.name, ttl):
            if self._leader_pid == pid:
                log.warning("projector_leadership_lost", name=self.config.name, pid=pid)
            self._leader_pid = None
            await self._log_standby(conn)
            return False
        self._renew_at, self._standby_logged_at = due, None
        if self._leader_pid == pid:
            await discard_plans(conn)  # every renewal: the apply statement's plan is made again for the tables now
            return True
        await ensure_checkpoint(conn, self.config.name)
        self._leader_pid = pid
        checkpoint = await get_checkpoint(conn, self.config.name)
        self.cursor = checkpoint.cursor if checkpoint is not None else (0, 0)  # ensured just above
        log.info("projector_leader_acquired", name=self.config.name, pid=pid, cursor=list(self.cursor))
        return True

    async def _log_standby(self, conn) -> None:
        """Who leads instead of us: logged when we start standing by, then every standby_log_interval."""
        now = time.monotonic()
        if self._standby_logged_at is not None and now - self._standby_logged_at < self.config.standby_log_interval:
            return
        self._standby_logged_at = now
        lease = await get_leadership(conn, self.config.name) or {}
        log.info("projector_standby", name=self.config.name, pid=conn.get_server_pid(),
                 holder_pid=lease.get("holder_pid"), holder_live=lease.get("live"),
                 acquired_at=_iso(lease.get("acquired_at")), renewed_at=_iso(lease.get("renewed_at")),
                 expires_at=_iso(lease.get("expires_at")))

    async def lag(self) -> LagSample:
        """Events and seconds behind; warns when an open transaction holds the horizon back."""
        async with self._lock:
            conn = await self._listening.ensure()
            checkpoint = await get_checkpoint(conn, self.config.name)
            sample = await sample_lag(conn, checkpoint.cursor if checkpoint else (0, 0))
        self.last_lag = sample
        if sample.held_events and sample.held_seconds >= self.config.horizon_warn_after:
            log.warning("projection_horizon_held", name=self.config.name, xmin=sample.xmin,
                        held_events=sample.held_events, held_seconds=round(sample.held_seconds, 3),
                        blocking_pid=sample.blocking_pid)
        return sample

    def wake(self) -> None:
        self._listening.ring()

    async def release(self) -> None:
        """Close the connection (which releases leadership)."""
        self._leader_pid = None
        await self._listening.close()

    async def close(self) -> None:
        """The same as `stop()`: closing only the connection would let the loop reconnect."""
        await self.stop()

    async def after_failure(self, exc: Exception) -> None:
        self._leader_pid = None  # a lost or broken connection may have taken the lease with it

    def before_pass(self) -> None:
        self._token = self._listening.arm()

    async def idle(self, result: ProjectionResult) -> None:
        """Keep the lag and the change feed's retention, then sleep until there may be more to project."""
        token = self._token or self._listening.arm()
        if result.leader:
            await self._housekeeping()
        if result.leader and result.fault is not None:
            await self._listening.wait(token, self.config.poll_interval)  # stopped: retry, not a tight loop
        elif result.leader:
            await self._sleep(token, result)
        else:
            await self._listening.wait(token, self.config.takeover_interval)
        if self._listening.connection is None:
            raise ConnectionError("projector connection lost")

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + self.config.lag_interval
            await self.lag()
        if now >= self._next_prune:
            self._next_prune = now + self.config.prune_interval
            await self._prune()

    async def _sleep(self, token: asyncio.Event, result: ProjectionResult) -> None:
        """Until there may be more to project: rung, polled, or soon while appends are in flight."""
        if not self.config.listen:
            await self._listening.wait(token, self.config.poll_interval)
            return
        async with self._lock:
            state = await arm_doorbell(await self._listening.ensure(), self.cursor or (0, 0))
        if state == "armed":
            self._busy_wait, self._unarmed_since = self.config.busy_poll_interval, None
            try:
                await self._listening.wait(token, self.config.poll_interval)
            finally:
                async with self._lock:
                    if self._listening.connection is not None:  # a lost session took the lock with it
                        await release_doorbell(self._listening.connection)
            return
        if state == "pending":
            return  # readable events committed after the catch-up: straight on
        # 'busy' (appends in flight) or 'held' (behind an open transaction): poll, backing off
        # while nothing new arrives.
        moved = result.events > 0
        self._busy_wait = next_busy_wait(self.config, self._busy_wait, result.events)
        if state == "busy" and not moved:
            await self._warn_if_doorbell_unavailable()
        else:
            self._unarmed_since = None
        await self._listening.wait(token, self._busy_wait)

    async def _warn_if_doorbell_unavailable(self) -> None:
        now = time.monotonic()
        if self._unarmed_since is None:
            self._unarmed_since = now
        elif now - self._unarmed_since >= self.config.horizon_warn_after:
            self._unarmed_since = now  # at most once per horizon_warn_after
            async with self._lock:
                holders = await doorbell_holders(await self._listening.ensure())
            log.warning("doorbell_unavailable", name=self.config.name, holders=holders,
                        seconds=round(self.config.horizon_warn_after, 1))

    async def _prune(self) -> None:
        async with self._lock:
            conn = await self._listening.ensure()
            removed = await prune_changes(conn, self.config.change_retention)
        if removed:
            log.info("job_changes_pruned", name=self.config.name, removed=removed)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None
