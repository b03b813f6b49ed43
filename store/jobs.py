"""Reads of the jobs projection for the VideoJobManager: one job, filtered pages, stats.

Rows leave as frozen models (JobRow, JobStatsRow, ...). Every query runs under the
caller's Row Level Security: the same call returns different rows for different users.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from .projections import JobRow
from .sqlfiles import load_queries

Executor = asyncpg.Pool | asyncpg.Connection


def _q(name: str) -> str:
    return load_queries()[name]


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
    after: tuple[datetime, UUID] | None = None  # keyset: (created_at, job_id) of the last row seen
    limit: int = 50
    offset: int = 0

    def filter_args(self) -> tuple:
        return (self.user_id, self.team_id, list(self.statuses) if self.statuses else None, self.platform_target,
                self.quality_preset, self.enhancement_level, self.created_from, self.created_before)


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


async def get_job(executor: Executor, job_id: UUID) -> JobRow | None:
    """The projected job, or None when it does not exist or the caller may not see it."""
    row = await executor.fetchrow(_q("job_get"), job_id)
    return JobRow.model_validate(dict(row)) if row else None


async def find_jobs(executor: Executor, query: JobQuery) -> list[JobRow]:
    """One page of jobs, newest first (keyset when `query.after` is set, else OFFSET)."""
    after_at, after_id = query.after if query.after else (None, None)
    offset = 0 if query.after else query.offset
    rows = await executor.fetch(_q("job_find_page"), *query.filter_args(), after_at, after_id, query.limit, offset)
    return [JobRow.model_validate(dict(r)) for r in rows]


async def count_jobs(executor: Executor, query: JobQuery) -> int:
    """How many jobs match the filters of `query`."""
    return await executor.fetchval(_q("job_count"), *query.filter_args())


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

    def args(self) -> tuple[list[str], list[str | None], list[int]]:
        return list(self.scopes), list(self.ids), list(self.signs)


async def get_stats(executor: Executor, scope: StatsScope) -> StatsRow:
    """The counters of `scope`, summed."""
    row = await executor.fetchrow(_q("job_stats_get"), *scope.args())
    return StatsRow.model_validate(dict(row))


async def get_daily(executor: Executor, scope: StatsScope, days: int) -> list[DailyRow]:
    """The last `days` days of finished work in `scope`, oldest first."""
    rows = await executor.fetch(_q("job_stats_daily_get"), *scope.args(), days)
    return [DailyRow.model_validate(dict(r)) for r in rows]


async def get_platforms(executor: Executor, scope: StatsScope) -> list[PlatformRow]:
    """Jobs per platform and status in `scope`."""
    rows = await executor.fetch(_q("job_stats_platform_get"), *scope.args())
    return [PlatformRow.model_validate(dict(r)) for r in rows]

