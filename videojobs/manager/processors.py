"""What video workers call: claim queued jobs atomically."""

from __future__ import annotations

from statemachine import Platform, ValidationError
from store.jobs import claim_jobs

from ..models import Attempt
from .core import ManagerCore


class ProcessorsMixin(ManagerCore):
    """claim_jobs."""

    async def claim_jobs(self, worker_id: str, limit: int = 1, platform_target: str | None = None) -> list[Attempt]:
        """Start up to `limit` queued jobs for `worker_id`, oldest first; two workers never get the same job."""
        if not isinstance(worker_id, str) or not 1 <= len(worker_id) <= 128:
            raise ValidationError("worker_id must be 1-128 characters", field="worker_id")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit must be an integer from 1 to 1000", field="limit")
        if platform_target is not None:
            try:
                platform_target = Platform(platform_target).value
            except ValueError:
                raise ValidationError("unknown platform_target", field="platform_target") from None
        claimed = await self._claim(worker_id, limit, platform_target)
        if len(claimed) < limit:
            # Short: jobs this manager just queued may not be projected yet (wait, bounded; at once
            # when they are), or the projector held a queued row's lock and SKIP LOCKED passed it.
            await self._read_your_writes()
            claimed += await self._claim(worker_id, limit - len(claimed), platform_target)
        attempts = []
        for row in claimed:
            self._remember_cursor((row.xact_id, row.position))
            attempts.append(Attempt(job_id=row.job_id, attempt=row.attempt, worker_id=worker_id,
                                    job=await self._job_at(row.job_id, row.version)))
        return attempts

    async def _claim(self, worker_id: str, limit: int, platform: str | None):
        async with self._connection() as conn:
            return await claim_jobs(conn, worker_id, limit, platform)
