"""Audit reads over the event log: search, history as of an instant, hash-chain verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from .models import Event, event_from_row
from .sqlfiles import load_queries

Executor = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of an audit search; None means "any". Keyset by position."""

    after_position: int = 0
    actor: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    user_id: str | None = None
    team_id: UUID | None = None
    job_id: UUID | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Result of recomputing the hash chain: how many events, and the first broken one."""

    checked: int
    broken_job_id: UUID | None = None
    broken_version: int | None = None
    broken_position: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_position is None


async def find_events(executor: Executor, query: EventQuery) -> list[Event]:
    """Events after `query.after_position` that match the filters, oldest first."""
    rows = await executor.fetch(load_queries()["event_find_page"], query.after_position, query.actor, query.type,
                                query.since, query.until, query.user_id, query.team_id, query.job_id, query.limit)
    return [event_from_row(r) for r in rows]


async def read_stream_until(executor: Executor, job_id: UUID, at: datetime) -> list[Event]:
    """One job's events that happened at or before `at`, in version order."""
    rows = await executor.fetch(load_queries()["event_get_stream_until"], job_id, at)
    return [event_from_row(r) for r in rows]


async def verify_chain(executor: Executor, job_id: UUID | None = None) -> ChainCheck:
    """Recompute every event's hash and link; report the first broken event by position."""
    row = await executor.fetchrow(load_queries()["event_verify_chain"], job_id)
    if row["position"] is None:
        return ChainCheck(checked=row["checked"])
    reason = ("content does not match its hash" if not row["hash_ok"]
              else "previous-hash link is broken" if not row["link_ok"] else "version sequence has a gap")
    return ChainCheck(checked=row["checked"], broken_job_id=row["job_id"], broken_version=row["version"],
                      broken_position=row["position"], reason=reason)


async def last_cursor(executor: Executor) -> tuple[int, int] | None:
    """(xact_id, position) of the newest event the caller can see, or None for an empty log."""
    row = await executor.fetchrow(load_queries()["event_get_last_cursor"])
    return (row["xact_id"], row["position"]) if row else None
