"""The auditor's endpoints: search the log, export a search (streamed), verify the hash chain.

Any token: what a caller finds is what RLS lets it read (an end user: the events of their own jobs and
their teams'; a service: every event). The filters are find_events' own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from videojobs import VideoJobManager
from videojobs.models import EventPage, HistoryReport, Trigger, iso_date_only

from ..console_schemas import ActorQuery, EventSearchPage, OwnerQuery
from ..dependencies import Manager
from .common import problems

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
EXPORT_PAGE = 1000
CSV_COLUMNS = ("position", "occurred_at", "job_id", "version", "type", "from_state", "to_state", "attempt",
               "attempts_left", "actor", "user_id", "team_id", "data")


@dataclass(frozen=True, slots=True)
class EventFilters:
    """find_events' filters, from the query string."""

    actor: str | None
    type: str | None
    since: datetime | None
    until: datetime | None
    user_id: str | None
    team_id: UUID | None
    job_id: UUID | None

    def page(self, manager: VideoJobManager, after: int, limit: int) -> Any:
        """One page of the search (a coroutine of an EventPage)."""
        return manager.audit.find_events(actor=self.actor, type=self.type, since=self.since, until=self.until,
                                         user_id=self.user_id, team_id=self.team_id, job_id=self.job_id,
                                         after=after, limit=limit)


def event_filters(
    actor: ActorQuery = None,
    type: Annotated[Trigger | None, Query(description="The event type (trigger)")] = None,
    since: Annotated[datetime | None, BeforeValidator(iso_date_only),
                     Query(description="At or after this instant (ISO 8601)")] = None,
    until: Annotated[datetime | None, BeforeValidator(iso_date_only),
                     Query(description="Before this instant (ISO 8601); after `since` (422)")] = None,
    user_id: OwnerQuery = None,
    team_id: Annotated[UUID | None, Query(description="The job's team")] = None,
    job_id: Annotated[UUID | None, Query(description="One job")] = None,
) -> EventFilters:
    """The search's filters (the manager checks them again: e.g. `until` after `since`)."""
    return EventFilters(actor, type.value if type is not None else None, since, until, user_id, team_id, job_id)


Filters = Annotated[EventFilters, Depends(event_filters)]


@router.get("/events", response_model=EventSearchPage, summary="Search the audit log", responses=problems())
async def search(manager: Manager, filters: Filters,
                 after: Annotated[int, Query(ge=0, le=2**63 - 1, description="next_cursor of the previous page")] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> EventSearchPage:
    """Events that match every filter given, oldest first (by position)."""
    page: EventPage = await filters.page(manager, after, limit)
    return EventSearchPage(items=page.items, next_cursor=page.next_cursor)


# StreamingResponse names no media type: the 200's content is what `responses` states, and the problem
# responses are JSON (made application/problem+json by openapi.py) as everywhere else.
@router.get("/events/export", summary="Export a search (streamed: CSV or JSON Lines)", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}},
                                         "application/x-ndjson": {"schema": {"type": "string"}}},
                             "description": "Every matching event, oldest first, one per line (CSV: after a "
                                            "header line)"}, **problems()})
async def export(manager: Manager, filters: Filters,
                 format: Annotated[Literal["csv", "jsonl"], Query(description="csv or jsonl")] = "jsonl",
                 ) -> StreamingResponse:
    """The whole search, read a page at a time as it is sent (any size, constant memory). The first page is
    read before the answer starts, so that a bad filter is a 422, not a broken download."""
    first: EventPage = await filters.page(manager, 0, EXPORT_PAGE)
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    disposition = f'attachment; filename="vjm-events.{format}"'
    return StreamingResponse(_lines(manager, filters, first, format), media_type=media,
                             headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


@router.get("/verify", response_model=HistoryReport, summary="Verify the hash chain", responses=problems(404))
async def verify(manager: Manager,
                 job_id: Annotated[UUID | None, Query(description="One job; omit for every event the caller "
                                                                 "may read")] = None) -> HistoryReport:
    """Recompute the chain of one job, or of the whole log the caller may read; the first broken link."""
    return await manager.audit.verify_history(job_id)


async def _lines(manager: VideoJobManager, filters: EventFilters, page: EventPage,
                 format: str) -> AsyncIterator[str]:
    if format == "csv":
        yield _csv_row(CSV_COLUMNS)
    while True:
        yield "".join(_csv_event(e) if format == "csv" else e.model_dump_json() + "\n" for e in page.items)
        if page.next_cursor is None:
            return
        page = await filters.page(manager, page.next_cursor, EXPORT_PAGE)


def _csv_event(event: Any) -> str:
    row = event.model_dump(mode="json")
    row["data"] = json.dumps(row["data"], sort_keys=True)
    return _csv_row([row[c] for c in CSV_COLUMNS])


def _csv_row(values: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return out.getvalue()
