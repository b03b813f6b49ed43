"""Request and response bodies of the endpoints a worker runtime calls over HTTP (`vjm worker --api`):
the long-polled claim's extra fields, requeue and release, the heartbeat, and the registry.

Bounds are the database's own (sql/schema/065_workers.sql: a lease lasts 0.5 to 86400 s; a
registry row's host, version and platforms), so that whatever the document admits is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from videojobs.manager.workers import RegisteredWorker
from videojobs.models import Platform, Trigger

from .payload_types import WorkerId, payload_type
from .schemas import Body, Count, LeaseSeconds, Wait

Pid = Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]
Slots = Annotated[int, Field(strict=True, ge=0, le=1000)]

if TYPE_CHECKING:
    RequeueError = str
    RetryAfter = float
    ReleaseReason = str
    HostName = str
    Version = str
else:
    RequeueError = payload_type(Trigger.REQUEUE, "error")
    RetryAfter = payload_type(Trigger.REQUEUE, "retry_after")
    ReleaseReason = payload_type(Trigger.RELEASE, "reason")
    # Registry text is no payload, but refuses what a worker id refuses (NUL, lone surrogates); a version
    # is at most 64 characters (the registry's bound), a host name at most 128 (under the registry's 255).
    HostName = WorkerId
    Version = Annotated[WorkerId, Field(max_length=64)]


class RequeueRequest(Body):
    """The attempt asks to be tried again later (a Retry, a transient error); it uses up this attempt."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"attempt": 1, "error": "TransientError: storage unreachable", "retry_after": 30}]})

    attempt: Count
    error: RequeueError | None = None
    retry_after: RetryAfter | None = Field(None, description="Seconds before the job may be claimed again")


class ReleaseRequest(Body):
    """The attempt gives its job back unfinished (its worker is shutting down); the attempt is given back too."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"attempt": 1, "reason": "worker shutting down"}]})

    attempt: Count
    reason: ReleaseReason | None = None


class LeaseRenewal(BaseModel):
    """One lease the worker holds: the job, the attempt it was claimed under, its length from now on."""

    model_config = ConfigDict(extra="forbid")

    job_id: UUID
    attempt: Count
    seconds: LeaseSeconds


class HeartbeatRequest(Body):
    """Renew these leases; with `wait`, hold the answer until one of the jobs leaves `processing`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"worker_id": "worker-7", "wait": 25,
         "leases": [{"job_id": "0190d3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", "attempt": 1, "seconds": 60}]}]})

    worker_id: WorkerId
    leases: Annotated[list[LeaseRenewal], Field(max_length=1000)]
    wait: Wait = 0.0


class HeldLease(BaseModel):
    """A lease still the worker's, and its new deadline."""

    job_id: UUID
    expires_at: datetime


class HeartbeatResponse(BaseModel):
    """The leases still held, and the jobs lost (cancelled, deleted, timed out, re-run): stop their work."""

    held: list[HeldLease]
    lost: list[UUID]


class WorkerBeatRequest(Body):
    """A worker about itself, with each heartbeat round: the registry row `GET /api/v1/admin/workers` lists."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"worker_id": "worker-7", "host": "encoder-3", "pid": 4242, "concurrency": 4, "running": 2,
         "platforms": ["tiktok"], "version": "0.1.0", "lease_seconds": 60, "stopped": False}]})

    worker_id: WorkerId
    host: HostName
    pid: Pid
    concurrency: Annotated[int, Field(strict=True, ge=1, le=1000)]
    running: Slots
    platforms: Annotated[list[Platform], Field(max_length=16)] | None = Field(
        None, description="The platforms it claims; null: every platform")
    version: Version
    lease_seconds: LeaseSeconds
    stopped: Annotated[bool, Field(strict=True)] = Field(
        False, description="True: it stopped gracefully (else silent for three leases: lost)")


class WorkerList(BaseModel):
    """Every registered worker, running ones first; `state` is lost after three leases without a heartbeat."""

    workers: list[RegisteredWorker]
