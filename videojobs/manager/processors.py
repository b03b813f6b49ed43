"""What video workers call: claim queued jobs atomically."""

from __future__ import annotations

from statemachine import Platform, ValidationError
from store.job_streams import claim_jobs

from ..models import Attempt
from .core import ManagerCore, fold_job


class ProcessorsMixin(ManagerCore):
    """claim_jobs."""

    async def claim_jobs(self, worker_id: str, limit: int = 1, platform_target: str | None = None) -> list[Attempt]:
        """Start up to `limit` queued jobs for `worker_id`, oldest first; two workers never get the same job.

        Claims read the run queue the append functions keep (vjm.job_queue), not the
        projection: a job queued a moment ago can be claimed at once, and one claimed a
        moment ago is never offered again.
        """
        if not isinstance(worker_id, str) or not 1 <= len(worker_id) <= 128:
            raise ValidationError("worker_id must be 1-128 characters", field="worker_id")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit must be an integer from 1 to 1000", field="limit")
        if platform_target is not None:
            try:
                platform_target = Platform(platform_target).value
            except ValueError:
                raise ValidationError("unknown platform_target", field="platform_target") from None
        async with self._connection() as conn:
            streams = await claim_jobs(conn, worker_id, limit, platform_target)
        attempts = []
        for stream in streams:
            started = stream[-1]
            self._remember(started)
            attempts.append(Attempt(job_id=started.job_id, attempt=started.attempt, worker_id=worker_id,
                                    job=fold_job(stream)))
        return attempts
