"""Reads of the jobs projection for the VideoJobManager: one job, filtered pages, stats (and the
claim latency, read from the log: vjm.claim_waits).

Rows leave as frozen models (JobRow, JobStatsRow, ...). Every query runs under the
caller's Row Level Security: the same call returns different rows for different users.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from .executor import Executor
from .models import construct_valid
from .projections import JobRow
from .queries import fetch_all, fetch_optional, fetch_value


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Filters and paging of a job list; None means "any"."""

    user_id: str | None = None
    team_id: UUID | None = None
    statuses: tuple[str, ...] | None = None
    platform_target: str | None = None
    quality_preset: str | None = None
    enhancement_level: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    scheduled: bool = False  # only queued jobs whose run_at is still ahead
    after: tuple[datetime, UUID] | None = None  # keyset: (created_at, job_id) of the last row seen
    limit: int = 50
    offset: int = 0

    def filters(self) -> dict[str, Any]:
        """The parameters of job_count (and the filters of job_find_page), by name."""
        return {"user_id": self.user_id, "team_id": self.team_id,
                "statuses": list(self.statuses) if self.statuses else None,
                "platform_target": self.platform_target, "quality_preset": self.quality_preset,
                "enhancement_level": self.enhancement_level, "created_from": self.created_from,
                "created_before": self.created_before, "scheduled": self.scheduled}


class StatsRow(BaseModel):
    """Counters of one scope (or their sum)."""

    model_config = ConfigDict(frozen=True)

    total_jobs: int
    queued_jobs: int
    processing_jobs: int
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    timed_jobs: int
    total_processing_ms: int


class DailyRow(BaseModel):
    """One UTC day of finished work."""

    model_config = ConfigDict(frozen=True)

    day: date
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    processing_ms: int


class PlatformRow(BaseModel):
    """Jobs of one platform, by status."""

    model_config = ConfigDict(frozen=True)

    platform_target: str
    total_jobs: int
    queued_jobs: int
    processing_jobs: int
    completed_jobs: int
    failed_jobs: int
    cancelled_jobs: int


class ClaimLatencyRow(BaseModel):
    """How long the starts of one platform waited to be claimed, in seconds (exact percentiles)."""

    model_config = ConfigDict(frozen=True)

    platform_target: str
    claims: int
    p50_seconds: float
    p95_seconds: float
    max_seconds: float


async def get_job(executor: Executor, job_id: UUID) -> JobRow | None:
    """The projected job, or None when it does not exist or the caller may not see it."""
    row = await fetch_optional(executor, "job_get", job_id=job_id)
    return JobRow.model_validate(dict(row)) if row else None


R = TypeVar("R", bound=JobRow)


async def find_jobs(executor: Executor, query: JobQuery, model: type[R]) -> list[R]:
    """One page of jobs, newest first (keyset when `query.after` is set, else OFFSET), as `model`s.

    Built without validation: job_find_page returns exactly JobRow's fields, each of its column's
    Python type (test_manager_lists.py::test_a_page_holds_what_validation_would_build). A page of 50 was
    validated twice on its way to the caller, about half of a keyset page's time in the manager.
    """
    after_at, after_id = query.after if query.after else (None, None)
    offset = 0 if query.after else query.offset
    rows = await fetch_all(executor, "job_find_page", **query.filters(), after_created_at=after_at,
                           after_job_id=after_id, limit=query.limit, offset=offset)
    return [construct_valid(model, dict(r)) for r in rows]


async def count_jobs(executor: Executor, query: JobQuery) -> int:
    """How many jobs match the filters of `query`."""
    return int(await fetch_value(executor, "job_count", **query.filters()))


@dataclass(frozen=True, slots=True)
class StatsScope:
    """Which counter rows a statistic sums, each with a sign (vjm.job_stats, schema/070_read_models.sql).

    A job counts once in its owner's 'user' row, and, in a team, once in the 'team' row and
    once in the 'member' row of its (team, owner) pair. So the jobs an end user sees (their
    own and their teams') are their user row + each team row - their member row in each of
    those teams: every job exactly once.
    """

    scopes: tuple[str, ...]
    ids: tuple[str | None, ...]  # None: every row of that scope the caller may read
    signs: tuple[int, ...]

    @classmethod
    def one(cls, scope: str, scope_id: str) -> StatsScope:
        """One user's or one team's jobs."""
        return cls((scope,), (scope_id,), (1,))

    @classmethod
    def every_user(cls) -> StatsScope:
        """Every job the caller may read, through the user rows (each job is in exactly one)."""
        return cls(("user",), (None,), (1,))

    @classmethod
    def visible_to(cls, user_id: str, team_ids: list[UUID] | tuple[UUID, ...]) -> StatsScope:
        """An end user's own jobs and their teams' jobs, each once."""
        teams = [str(t) for t in sorted(set(team_ids))]
        return cls(("user", *["team"] * len(teams), *["member"] * len(teams)),
                   (user_id, *teams, *[f"{t}:{user_id}" for t in teams]),
                   (1, *[1] * len(teams), *[-1] * len(teams)))

    def params(self) -> dict[str, list[Any]]:
        """The parameters of the job_stats_*_get queries, by name."""
        return {"scopes": list(self.scopes), "scope_ids": list(self.ids), "signs": list(self.signs)}


async def get_stats(executor: Executor, scope: StatsScope) -> StatsRow:
    """The counters of `scope`, summed."""
    return (await get_stats_breakdown(executor, scope, None)).totals


@dataclass(frozen=True, slots=True)
class StatsBreakdown:
    """The counters of a scope, and (when days were asked for) per platform and per day, from one snapshot."""

    totals: StatsRow
    platforms: list[PlatformRow]  # by platform name
    daily: list[DailyRow]  # oldest first


async def get_stats_breakdown(executor: Executor, scope: StatsScope, days: int | None) -> StatsBreakdown:
    """The counters of `scope`, summed; with `days`, also per platform and the last `days` days of finished
    work, in the same statement (so they add up to the totals)."""
    rows = await fetch_all(executor, "job_stats_get", **scope.params(), days=days)
    by_kind: dict[str, list[Any]] = {"total": [], "platform": [], "day": []}
    for row in rows:
        by_kind[row["kind"]].append(row)
    (total,) = by_kind["total"]
    totals = StatsRow(total_jobs=total["total_jobs"], queued_jobs=total["queued_jobs"],
                      processing_jobs=total["processing_jobs"], completed_jobs=total["completed_jobs"],
                      failed_jobs=total["failed_jobs"], cancelled_jobs=total["cancelled_jobs"],
                      timed_jobs=total["timed_jobs"], total_processing_ms=total["processing_ms"])
    platforms = [PlatformRow.model_validate({f: r[f] for f in PlatformRow.model_fields})
                 for r in sorted(by_kind["platform"], key=lambda r: r["platform_target"])]
    daily = [DailyRow.model_validate({f: r[f] for f in DailyRow.model_fields})
             for r in sorted(by_kind["day"], key=lambda r: r["day"])]
    return StatsBreakdown(totals, platforms, daily)


async def get_claim_waits(executor: Executor, hours: int, user_id: str | None = None,
                          team_id: UUID | None = None) -> list[ClaimLatencyRow]:
    """Claim latency per platform over the starts of the last `hours` hours (of one owner or team when
    named), from the log: every start the caller may see (Row Level Security), by platform name."""
    rows = await fetch_all(executor, "claim_waits_get", hours=hours, user_id=user_id, team_id=team_id)
    return [ClaimLatencyRow.model_validate(dict(r)) for r in rows]
