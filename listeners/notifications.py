"""vjm_jobs notifications: small JSON doorbells sent by the projector after each batch.

Invariant 7: ids and states only (no filenames, paths or errors), far below the
8000-byte NOTIFY limit. A batch touching at most `per_job_limit` jobs sends one
`job` notice per job (position, job_id, status, user_id, team_id, ...); a larger
batch (a burst) sends a single `batch` summary with its cursor and change-feed
range, and listeners read the details from vjm.job_changes. Both carry the
checkpoint `cursor`, so a read-your-writes waiter needs no query to wake up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal
from uuid import UUID

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from store.projections import JobChange

CHANNEL = "vjm_jobs"
# The claim policy changed so that work may be claimable now (a resume, a cap raised or lifted:
# sql/schema/063_claims.sql); the payload names the setting and its scope, and only prompts a claim.
QUEUE_CHANNEL = "vjm_queue"
MAX_PAYLOAD = 7900


class JobNotice(BaseModel):
    """One job changed in the last batch."""

    model_config = ConfigDict(frozen=True)

    type: Literal["job"] = "job"
    seq: int
    position: int
    job_id: UUID
    status: str
    version: int
    user_id: str
    team_id: UUID | None
    cursor: tuple[int, int]


class BatchNotice(BaseModel):
    """Many jobs changed in the last batch: read vjm.job_changes from seq_from to seq_to."""

    model_config = ConfigDict(frozen=True)

    type: Literal["batch"] = "batch"
    seq_from: int
    seq_to: int
    jobs: int
    events: int
    position: int
    cursor: tuple[int, int]


Notice = Annotated[JobNotice | BatchNotice, Field(discriminator="type")]
_ADAPTER = pydantic.TypeAdapter(Notice)


def build_notices(changes: Sequence[JobChange], cursor: tuple[int, int], events: int,
                  per_job_limit: int) -> list[str]:
    """The payloads for one applied batch: one per job, or one summary for a burst."""
    if not changes:
        return []
    if len(changes) <= per_job_limit:
        return [JobNotice(seq=c.seq, position=c.position, job_id=c.job_id, status=c.status, version=c.version,
                          user_id=c.user_id, team_id=c.team_id, cursor=cursor).model_dump_json()
                for c in changes]
    return [BatchNotice(seq_from=changes[0].seq, seq_to=changes[-1].seq, jobs=len(changes), events=events,
                        position=cursor[1], cursor=cursor).model_dump_json()]


class Doorbell(BaseModel):
    """A `vjm_events` payload: `count` events were appended, the newest at `position`.

    One shape for every append (sql/schema/050_locks_and_doorbell.sql). A doorbell says
    only that the log grew: readers read the log, never the payload, for what changed.
    """

    model_config = ConfigDict(frozen=True)

    position: int = Field(ge=1)
    count: int = Field(ge=1)


_DOORBELL = pydantic.TypeAdapter(Doorbell)


def parse_doorbell(payload: str) -> Doorbell | None:
    """Parse a vjm_events payload; None for anything unrecognised (never raises)."""
    try:
        return _DOORBELL.validate_json(payload)
    except (pydantic.ValidationError, ValueError):
        return None


def parse_notice(payload: str) -> JobNotice | BatchNotice | None:
    """Parse a vjm_jobs payload; None for anything unrecognised (never raises)."""
    try:
        return _ADAPTER.validate_json(payload)
    except (pydantic.ValidationError, ValueError):
        return None
