"""The worker's settings, validated once."""

from __future__ import annotations

import os
import socket
import uuid

from pydantic import BaseModel, ConfigDict, Field

from statemachine import Platform


def default_worker_id() -> str:
    """host:pid:random, unique per Worker: what start events and leases name."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerConfig(BaseModel):
    """How a Worker claims and runs jobs (seconds for every duration)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str = Field(default_factory=default_worker_id, min_length=1, max_length=128)
    concurrency: int = Field(1, ge=1, le=1000)
    platforms: tuple[Platform, ...] | None = None  # None: every platform
    lease_seconds: float = Field(60.0, ge=0.5, le=86400)
    shutdown_timeout: float = Field(30.0, ge=0, le=86400)
    poll_interval: float = Field(1.0, gt=0, le=60)
    backoff_base: float = Field(1.0, ge=0, le=3600)
    backoff_max: float = Field(300.0, ge=0, le=7 * 86400)
