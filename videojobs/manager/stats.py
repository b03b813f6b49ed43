"""The stats service: statistics from the incrementally maintained counters (never a COUNT(*) over jobs),
and the claim latency, from a recent window of the log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from statemachine import ValidationError
from statemachine.validation import check_user_id
from store.events import as_uuid
from store.jobs import StatsScope, get_claim_waits, get_stats_breakdown
from store.teams import my_team_ids

from ..models import ClaimLatency, DailyStats, JobStats, PlatformStats
from .reads import read_on
from .session import Session

MAX_LATENCY_HOURS = 720  # 30 days: the window of a claim latency


class Stats:
    """get_job_stats, get_claim_latency."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def get_job_stats(self, user_id: str | None = None, team_id: UUID | str | None = None,
                            days: int = 30) -> JobStats:
        """Counts by status, total and average processing time, a platform breakdown and a daily series.

        For one user, one team, or (neither given) everything the caller may see: every job for
        a service, and for an end user their own jobs and their teams' (what list_jobs lists),
        each counted once.
        """
        named = _named_scope(user_id, team_id)
        if user_id is not None:
            self._session.own_scope(user_id)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
            raise ValidationError("days must be an integer from 1 to 366", field="days")
        viewer = self._session.caller.user_id

        async def counters(conn: Any) -> JobStats:
            if named is not None:
                counted = named
            elif viewer is not None:
                counted = StatsScope.visible_to(viewer, await my_team_ids(conn))
            else:
                counted = StatsScope.every_user()
            found = await get_stats_breakdown(conn, counted, days)  # one statement: the parts add up
            return _job_stats(found.totals, found.platforms, found.daily)

        return await read_on(self._session, counters, models=True)

    async def get_claim_latency(self, hours: int = 24, user_id: str | None = None,
                                team_id: UUID | str | None = None) -> list[ClaimLatency]:
        """How long jobs waited to be claimed, per platform, over the starts of the last `hours` hours.

        Scoped as get_job_stats: one user, one team, or (neither given) everything the caller may
        see (an end user: their own jobs and their teams'). Read from the log, not the projection,
        so it is current without waiting for the projector.
        """
        owner, team = _named(user_id, team_id)
        if user_id is not None:
            self._session.own_scope(user_id)
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_LATENCY_HOURS:
            raise ValidationError(f"hours must be an integer from 1 to {MAX_LATENCY_HOURS}", field="hours")
        rows = await read_on(self._session, lambda conn: get_claim_waits(conn, hours, user_id=owner, team_id=team),
                             models=False)
        return [ClaimLatency.model_validate(r.model_dump()) for r in rows]


def _job_stats(counts: Any, platforms: list[Any], daily: list[Any]) -> JobStats:
    """The counters, platform rows and daily rows as the public JobStats (seconds, not milliseconds)."""
    total_seconds = counts.total_processing_ms / 1000.0
    return JobStats(
        total_jobs=counts.total_jobs, queued_jobs=counts.queued_jobs, processing_jobs=counts.processing_jobs,
        completed_jobs=counts.completed_jobs, failed_jobs=counts.failed_jobs,
        cancelled_jobs=counts.cancelled_jobs, total_processing_time=total_seconds,
        average_processing_time=total_seconds / counts.timed_jobs if counts.timed_jobs else None,
        by_platform=[PlatformStats.model_validate(p.model_dump()) for p in platforms],
        daily=[DailyStats(day=d.day, completed_jobs=d.completed_jobs, failed_jobs=d.failed_jobs,
                          cancelled_jobs=d.cancelled_jobs, processing_seconds=d.processing_ms / 1000.0)
               for d in daily])


def _named(user_id: str | None, team_id: UUID | str | None) -> tuple[str | None, UUID | None]:
    """The one user or the one team a statistic is of, checked (neither: everything the caller may see)."""
    if user_id is not None and team_id is not None:
        raise ValidationError("give user_id or team_id, not both", field="team_id")
    return (check_user_id(user_id) if user_id is not None else None,
            as_uuid(team_id, "team_id") if team_id is not None else None)


def _named_scope(user_id: str | None, team_id: UUID | str | None) -> StatsScope | None:
    owner, team = _named(user_id, team_id)
    if owner is not None:
        return StatsScope.one("user", owner)
    if team is not None:
        return StatsScope.one("team", str(team))
    return None
