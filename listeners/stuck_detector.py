"""The stuck-job detector: resets processing jobs that stopped showing activity.

A job is stuck when it has been `processing` with no event for longer than
`timeout` (15 minutes by default). The scan reads the projection through the
partial index `jobs_processing_idle` (processing jobs by the minute of their
last activity, so jobs active within the timeout are not read); the reset is a
`time_out` transition appended through the event store, never an UPDATE. The event names the attempt
and the version the detector observed, so:
- two detectors racing on the same job: the second append hits the version guard
  (ConcurrencyConflict) or finds the job no longer processing (InvalidTransition),
  and is counted as skipped: each job is reset exactly once;
- a job that showed activity after the projection was read (not yet projected)
  is skipped the same way, so a lagging projection never resets a live job;
- the worker still holding the old attempt is refused by attempt fencing when it
  reports late (StaleAttempt).
The guard (sql/schema/060_write_api.sql) sends the job back to `queued`, or to `failed` when it has no
attempts left.

A job a videojobs.Worker runs holds a lease instead (sql/schema/065_workers.sql): the idle scan
leaves it alone, since heartbeats write no events, and each pass first times out the jobs whose
lease ran out (vjm.expire_leases, one transaction per pass, so that a heartbeat racing the
time_out either keeps the job or finds it lost, never both); that time_out records the lease.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from pydantic import BaseModel, ConfigDict, Field

from statemachine import ConcurrencyConflict, InvalidTransition, JobNotFound
from store import EventStore, Executor, prepare_event
from store.leases import expire_leases
from store.projections import StuckJob, find_stuck_jobs

from .service import BackgroundService

log = structlog.get_logger("vjm.stuck_detector")


class StuckDetectorConfig(BaseModel):
    """Validated detector settings (seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float = Field(15 * 60.0, ge=0, le=7 * 86400)
    interval: float = Field(60.0, gt=0, le=86400)
    batch_size: int = Field(100, ge=1, le=10_000)
    actor: str = Field("system:stuck_detector", min_length=1, max_length=200)


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """One scan: jobs found stuck, reset to queued, failed for good, and skipped (lost a race)."""

    found: int
    requeued: int
    failed: int
    skipped: int

    @property
    def reset(self) -> int:
        """Jobs this detector actually reset (requeued or failed)."""
        return self.requeued + self.failed


class StuckDetector(BackgroundService[DetectorResult]):
    """Finds stuck jobs and appends `time_out` for each; see the module docstring."""

    name = "stuck_detector"

    def __init__(self, executor: Executor, config: StuckDetectorConfig | None = None):
        self.config = config or StuckDetectorConfig()
        super().__init__(interval=self.config.interval, max_backoff=self.config.interval)
        self._executor = executor
        self._store = EventStore(executor)

    async def run_once(self) -> DetectorResult:
        """Time out the jobs whose lease ran out, then scan once and reset every stuck job found (up to `batch_size` each)."""
        expired = await expire_leases(self._executor, self.config.batch_size, self.config.actor)
        stuck = await find_stuck_jobs(self._executor, self.config.timeout, self.config.batch_size)
        outcomes = [lease.to_state for lease in expired] + [await self._reset(job) for job in stuck]
        result = DetectorResult(found=len(outcomes), requeued=outcomes.count("queued"),
                                failed=outcomes.count("failed"), skipped=outcomes.count(None))
        if outcomes:
            log.info("stuck_jobs_scanned", leases_expired=len(expired), found=result.found, requeued=result.requeued,
                     failed=result.failed, skipped=result.skipped)
        return result

    async def _reset(self, job: StuckJob) -> str | None:
        event = prepare_event("time_out", {
            "reason": f"no activity for {job.idle_seconds:.0f} s (timeout {self.config.timeout:.0f} s)",
            "idle_seconds": round(job.idle_seconds, 3),
        }, job_id=job.job_id, attempt=job.attempt, expected_version=job.version, actor=self.config.actor)
        try:
            stored = await self._store.append(event)
        except (ConcurrencyConflict, InvalidTransition, JobNotFound) as exc:
            log.debug("stuck_job_skipped", job_id=str(job.job_id), reason=type(exc).__name__)
            return None
        log.info("stuck_job_reset", job_id=str(job.job_id), attempt=job.attempt, to_state=stored.to_state.value,
                 idle_seconds=round(job.idle_seconds, 1))
        return stored.to_state.value
