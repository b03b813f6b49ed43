"""Query parameters shared by the job lists: filters, offset paging and keyset cursors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import BeforeValidator

from videojobs import JobFilters
from videojobs.models import CURSOR_PATTERN, EnhancementLevel, Platform, QualityPreset, iso_date_only

StatusName = Literal["queued", "processing", "completed", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class ListParams:
    """Filters and paging of one list request."""

    filters: JobFilters
    limit: int
    offset: int
    cursor: str | None


async def list_params(
    status: Annotated[list[StatusName] | None, Query(description="One or more statuses (repeat the parameter)",
                                                     max_length=5)] = None,
    platform_target: Annotated[Platform | None, Query()] = None,
    quality_preset: Annotated[QualityPreset | None, Query()] = None,
    enhancement_level: Annotated[EnhancementLevel | None, Query()] = None,
    date_from: Annotated[datetime | None, BeforeValidator(iso_date_only),
                         Query(description="Created at or after (ISO 8601 date or instant)")] = None,
    date_to: Annotated[datetime | None, BeforeValidator(iso_date_only),
                       Query(description="Created at or before (ISO 8601 date or instant); not before "
                                           "date_from (422)")] = None,
    scheduled: Annotated[bool, Query(description="Only queued jobs whose run_at is still ahead")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    cursor: Annotated[str | None, Query(max_length=49, json_schema_extra={"pattern": CURSOR_PATTERN},
                                        description="next_cursor of the previous page")] = None,
) -> ListParams:
    """Parse the list parameters; the manager validates them again (e.g. date order, the cursor). Async, as every
    dependency (videojobs/http/dependencies.py): not run in the thread pool."""
    from videojobs import ValidationError

    try:
        filters = JobFilters.model_validate({
            "status": status, "platform_target": platform_target, "quality_preset": quality_preset,
            "enhancement_level": enhancement_level, "date_from": date_from, "date_to": date_to,
            "scheduled": scheduled})
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors: list[dict[str, Any]] = list(getattr(exc, "errors", lambda: [])())
        field = str(errors[0]["loc"][0]) if errors and errors[0].get("loc") else "query"
        raise ValidationError(errors[0]["msg"] if errors else str(exc), field=field) from None
    return ListParams(filters=filters, limit=limit, offset=offset, cursor=cursor)


Listing = Annotated[ListParams, Depends(list_params)]
