"""Admin maintenance: reset stuck jobs, rebuild and verify the projections."""

from __future__ import annotations

from datetime import timedelta

from listeners import (
    DetectorResult,
    RebuildResult,
    StuckDetector,
    StuckDetectorConfig,
    VerifyResult,
    rebuild_projections,
    verify_projections,
)
from statemachine import ValidationError
from store import translate_error
from store.audit import last_cursor

from .core import ManagerCore


class MaintenanceMixin(ManagerCore):
    """reset_stuck_jobs, rebuild_projections, verify_projections."""

    async def reset_stuck_jobs(self, older_than: timedelta | float = timedelta(minutes=15)) -> DetectorResult:
        """Time out processing jobs idle for longer than `older_than` (re-queued, or failed when out of attempts)."""
        seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 7 * 86400:
            raise ValidationError("older_than must be between 0 seconds and 7 days", field="older_than")
        await self._read_your_writes()
        detector = StuckDetector(self._pool, StuckDetectorConfig(timeout=float(seconds)))
        result = await _translated_call(detector.run_once())
        if result.reset:  # its time_out events were not written through this manager: wait for them too
            async with self._connection() as conn:
                cursor = await last_cursor(conn)
            if cursor:
                self._remember_cursor(cursor)
        return result

    async def rebuild_projections(self) -> RebuildResult:
        """Replay every event into fresh tables and swap them in; readers are never blocked."""
        return await _translated_call(rebuild_projections(self._url))

    async def verify_projections(self) -> VerifyResult:
        """Compare the live projection with a replay and the stats with a recount."""
        await self._read_your_writes()
        return await _translated_call(verify_projections(self._url))


async def _translated_call(operation):
    """Await `operation`; driver errors (e.g. the server going away) become vjm errors."""
    try:
        return await operation
    except Exception as exc:
        translated = translate_error(exc)
        if translated is exc:
            raise
        raise translated from exc
