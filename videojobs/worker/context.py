"""What a handler gets besides its job: the attempt it runs under, and ways to report and ask for time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from ..models import Attempt, Job
from .transport import WorkerTransport


class JobLost(Exception):  # noqa: N818 - a state, as asyncio.CancelledError
    """The job is no longer this attempt's (cancelled, deleted, timed out, taken over): stop, report nothing."""


class JobContext:
    """One running attempt, as its handler sees it.

    Every report names the attempt, so once the job has moved on (cancelled, timed out,
    re-run elsewhere) the database refuses it (attempt fencing); the runtime also stops
    sending reports for a job it knows is lost.
    """

    def __init__(self, attempt: Attempt, manager: WorkerTransport,
                 extend_lease: Callable[[float | None], Awaitable[None]]) -> None:
        self.attempt = attempt
        self._manager = manager
        self._extend_lease = extend_lease
        self.lost = False  # set by the runtime when the job is no longer this attempt's

    @property
    def job(self) -> Job:
        """The job as it was when claimed."""
        return self.attempt.job

    @property
    def job_id(self) -> UUID:
        return self.attempt.job_id

    async def progress(self, percent: float | None = None, clips_done: int | None = None,
                       phase: str | None = None) -> Job:
        """Record progress (a `progress` event); it also extends the lease. JobLost once the job is not ours."""
        if self.lost:
            raise JobLost(f"job {self.job_id} is no longer attempt {self.attempt.attempt}'s")
        job = await self._manager.report_progress(self.job_id, self.attempt.attempt, percent, clips_done,
                                                  phase=phase)
        await self._extend_lease(None)
        return job

    async def extend(self, seconds: float) -> None:
        """Ask for more time: from now on the lease of this job lasts `seconds`, renewed as before (a renewal never
        brings the deadline closer: a shorter length takes over once the deadline it gives is the later one)."""
        if self.lost:
            raise JobLost(f"job {self.job_id} is no longer attempt {self.attempt.attempt}'s")
        await self._extend_lease(seconds)
