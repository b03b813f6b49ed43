"""vjm_jobs notifications: small JSON doorbells sent by the projector after each batch.

Invariant 7: ids and states only (no filenames, paths or errors), far below the
8000-byte NOTIFY limit. A batch touching at most `per_job_limit` jobs sends one
`job` notice per job (position, job_id, status, user_id, team_id, ...); a larger
batch (a burst) sends a single `batch` summary with its cursor and change-feed
range, and listeners read the details from vjm.job_changes. Both carry the
checkpoint `cursor`, so a read-your-writes waiter needs no query to wake up.
The projector's apply statement builds them (projection_batch_apply in
sql/queries/projector_batch.sql); these models are their shape for the readers.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import pydantic
from pydantic import BaseModel, ConfigDict, Field

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
