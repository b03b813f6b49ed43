"""The seam between the worker runtime and what it runs over: the database (the manager itself) or the
HTTP API (videojobs/worker/http_client.py), behind one small typed Protocol.

`WorkerTransport` names exactly the processor operations the runtime calls, with the manager's own
signatures, so that a VideoJobManager satisfies it as it is: the database path calls the manager
directly, with no adapter in between. A `WorkerLink` adds what differs besides the calls: how the
worker hears that a running job moved on or that a job became claimable (the database's change
feed, or the API's long-polled heartbeat), and how a stop interrupts a call in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

from statemachine.validation import PlatformTargets
from store.workers import WorkerBeat

from ..models import Attempt, BulkResult, Job

if TYPE_CHECKING:
    from listeners.service import BackgroundService

    from ..manager import VideoJobManager
    from .leases import LeaseKeeper


class LeaseOperations(Protocol):
    """`manager.processors`, as far as the runtime uses it: give a job back, keep leases."""

    async def requeue_job(self, job_id: Any, attempt: int, *, error: str | None = None,
                          retry_after: float | None = None) -> Job: ...

    async def release_job(self, job_id: Any, attempt: int, *, reason: str | None = None) -> Job: ...

    async def renew_leases(self, worker_id: str, leases: list[tuple[Any, int, float]]) -> dict[UUID, datetime]: ...


@runtime_checkable
class HeldBackLookup(Protocol):
    """When the earliest held-back job of some platforms may be claimed (`manager.processors` has it; over HTTP
    the held claim is woken on the server instead, and re-checks there every second)."""

    async def next_claimable_in(self, platform_target: PlatformTargets = None) -> float | None: ...


class RegistryOperations(Protocol):
    """`manager.workers`, as far as a worker uses it: its own registry row."""

    async def beat(self, worker: WorkerBeat) -> None: ...


class WorkerTransport(Protocol):
    """The processor operations the runtime calls; a VideoJobManager satisfies it, so does HttpTransport."""

    @property
    def processors(self) -> LeaseOperations: ...

    @property
    def workers(self) -> RegistryOperations: ...

    async def claim_jobs(self, worker_id: str, limit: int = 1, platform_target: PlatformTargets = None, *,
                         lease_seconds: float | None = None) -> list[Attempt]: ...

    async def complete_jobs(self, completions: list[dict[str, Any]], *,
                            with_jobs: bool = True) -> list[BulkResult]: ...

    async def report_progress(self, job_id: UUID | str, attempt: int, percent: float | None = None,
                              clips_done: int | None = None, *, phase: str | None = None) -> Job: ...

    async def fail_job(self, job_id: UUID | str, error: str, attempt: int | None = None) -> Job: ...


@dataclass(frozen=True, slots=True)
class WatchTargets:
    """What a watcher prompts: the jobs running now, the lease keeper (renew at once: its answer names
    the jobs lost), and the claim loop (claim now: a job may be waiting)."""

    running: Callable[[], Collection[UUID]]
    keeper: LeaseKeeper
    wake_claims: Callable[[], None]


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """Where the HTTP API is, and the service_role token a worker presents (`Worker(api=...)`)."""

    url: str
    token: str


LONG_POLL_PAUSE = 0.05  # over HTTP, the claim loop's pause between two long polls (the server did the waiting)


def _nothing() -> None:
    """A link with no call to interrupt (the database's calls are short)."""


@dataclass(frozen=True, slots=True)
class WorkerLink:
    """What a Worker runs over: its transport, the watcher that prompts its services, and `interrupt()`,
    called once the worker stops claiming, to end a long-polled claim at once."""

    transport: WorkerTransport
    make_watcher: Callable[[WatchTargets], BackgroundService[Any]]
    interrupt: Callable[[], None] = _nothing


def database_link(manager: VideoJobManager) -> WorkerLink:
    """The manager itself as the transport, and the change feed (LISTEN vjm_jobs) as the watcher."""
    from .cancel_watch import CancelWatcher

    def watcher(targets: WatchTargets) -> BackgroundService[Any]:
        return CancelWatcher(manager.database_url, targets.running, targets.keeper.check_now, targets.wake_claims)

    return WorkerLink(manager, watcher)
