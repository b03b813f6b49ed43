"""The projector's settings and what one pass of it returns."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from store.faults import ProjectorFault


class ProjectorConfig(BaseModel):
    """Validated projector settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(min_length=1)
    role: str | None = None  # run-time role for the session, e.g. "vjm_projector" (log in as vjm_app)
    name: str = Field("main", min_length=1, max_length=63)
    batch_size: int = Field(1000, ge=1, le=20_000)
    poll_interval: float = Field(1.0, gt=0, le=3600)
    busy_poll_interval: float = Field(0.005, gt=0, le=60)
    busy_poll_max: float = Field(0.05, gt=0, le=60)
    # While appends are in flight, the busy poll waits so that the next batch holds about this many
    # events (at the rate the last batch arrived), between busy_poll_interval and busy_poll_max: a
    # batch's cost is mostly fixed, so batches of ten cost the writers' CPU 2-3x what batches of 32
    # do. 1 polls every busy_poll_interval.
    busy_batch_target: int = Field(32, ge=1, le=20_000)
    listen: bool = True
    takeover_interval: float = Field(0.5, gt=0, le=60)
    max_backoff: float = Field(5.0, gt=0, le=300)
    notify_per_job_limit: int = Field(10, ge=0, le=50)
    lag_interval: float = Field(5.0, gt=0)
    horizon_warn_after: float = Field(30.0, ge=0)
    change_retention: float = Field(7 * 86400.0, gt=0)
    prune_interval: float = Field(3600.0, gt=0)
    lease_ttl: float = Field(30.0, ge=1, le=86400)  # at least 3 x poll_interval is used
    standby_log_interval: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _busy_polls_in_order(self) -> ProjectorConfig:
        if self.busy_poll_interval > self.busy_poll_max:
            raise ValueError("busy_poll_interval must not exceed busy_poll_max")
        return self


def next_busy_wait(config: ProjectorConfig, last_wait: float, events: int) -> float:
    """The projector's next poll while appends are in flight, after a pass that applied `events`.

    Nothing new: twice the last wait (backing off). New events: the last wait scaled by
    busy_batch_target / events, so that the next batch holds about busy_batch_target events at the
    rate these arrived (it converges: the apply's own time gathers events too). Always between
    busy_poll_interval and busy_poll_max (and poll_interval).
    """
    ceiling = min(config.busy_poll_max, config.poll_interval)
    wait = last_wait * 2 if events == 0 else last_wait * config.busy_batch_target / events
    return min(max(wait, config.busy_poll_interval), ceiling)


@dataclass(frozen=True, slots=True)
class ProjectionResult:
    """What one `run_once()` did; `leader` is False on a standby (nothing applied)."""

    leader: bool
    events: int = 0
    batches: int = 0
    jobs: int = 0
    notifications: int = 0
    cursor: tuple[int, int] | None = None
    fault: ProjectorFault | None = None  # stopped at an event it cannot apply (listeners/faults.py)
