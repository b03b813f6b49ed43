"""VideoJobManager: the job API in Python, a small facade over composed services.

connect() builds one Runtime (pools, projection watcher, token source, the listeners it
runs) and a manager over it. The manager's services, one module each:

    jobs           create, read and change single jobs       (jobs.py)
    bulk           many jobs in one call                     (bulk.py)
    processors     claim work, complete many                 (processors.py)
    stats          counts and series from the counters,      (stats.py)
                   claim latency from the log
    teams          teams and their members                   (teams.py)
    audit          history, searches, proofs, the audit tree (audit.py)
    maintenance    stuck jobs, projections, health,          (maintenance.py)
                   who leads and who stands by               (deployment.py)
    queue          the claim policy: pauses, caps, turns     (queue.py)
    subscriptions  the change feed                           (subscriptions.py)
    workers        the registry of running processors        (workers.py)

The facade also carries the specification's method names (create_job, get_job_by_id, ...),
each its service's method, bound when asked for; the services are built on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from statemachine import ValidationError
from statemachine.validation import check_user_id

from .audit import Audit, TreeHeadReport
from .bulk import Bulk
from .deployment import DeploymentStatus
from .health import Health, PoolUsage
from .jobs import Jobs
from .maintenance import Maintenance, ProjectionStatus
from .processors import Processors
from .queue import Queue
from .session import Caller, Runtime, Session
from .stats import Stats
from .subscriptions import Subscriptions
from .teams import Teams
from .workers import Workers

S = TypeVar("S")
R = TypeVar("R")
P = ParamSpec("P")


class _ServiceMethod(Generic[S, P, R]):
    """A specification name on the facade: `manager.create_job` is `manager.jobs.create_job`, bound when asked
    for (a manager per request builds nothing it does not use: bench/README.md, "the HTTP path")."""

    def __init__(self, service: str, method: Callable[Concatenate[S, P], R]) -> None:
        self.service, self.method = service, method

    @overload
    def __get__(self, manager: None, owner: type) -> Callable[Concatenate[S, P], R]: ...

    @overload
    def __get__(self, manager: VideoJobManager, owner: type) -> Callable[P, R]: ...

    def __get__(self, manager: VideoJobManager | None, owner: type) -> Any:
        if manager is None:
            return self.method  # on the class: the service's function (its signature and docs, for help())
        return self.method.__get__(getattr(manager, self.service))


class VideoJobManager:
    """Create, read, change and audit video jobs.

    The plain manager acts as a trusted service; `as_user(user_id)` returns the same
    API scoped by Row Level Security to what that user may see and do.
    """

    def __init__(self, runtime: Runtime, caller: Caller = Caller()) -> None:
        self._session = Session(runtime, caller)

    # The services, each built on first use (cached_property: then an attribute of this manager).
    @cached_property
    def jobs(self) -> Jobs:
        return Jobs(self._session)
    @cached_property
    def bulk(self) -> Bulk:
        return Bulk(self._session)
    @cached_property
    def processors(self) -> Processors:
        return Processors(self._session)
    @cached_property
    def stats(self) -> Stats:
        return Stats(self._session)
    @cached_property
    def teams(self) -> Teams:
        return Teams(self._session)
    @cached_property
    def audit(self) -> Audit:
        return Audit(self._session)
    @cached_property
    def maintenance(self) -> Maintenance:
        return Maintenance(self._session)
    @cached_property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(self._session)
    @cached_property
    def workers(self) -> Workers:
        return Workers(self._session)
    @cached_property
    def queue(self) -> Queue:
        return Queue(self._session)

    # The specification's names.
    create_job = _ServiceMethod("jobs", Jobs.create_job)
    get_job_by_id = _ServiceMethod("jobs", Jobs.get_job_by_id)
    list_jobs = _ServiceMethod("jobs", Jobs.list_jobs)
    get_user_jobs = _ServiceMethod("jobs", Jobs.get_user_jobs)
    get_team_jobs = _ServiceMethod("jobs", Jobs.get_team_jobs)
    update_job_status = _ServiceMethod("jobs", Jobs.update_job_status)
    update_job_metadata = _ServiceMethod("jobs", Jobs.update_job_metadata)
    start_processing = _ServiceMethod("jobs", Jobs.start_processing)
    report_progress = _ServiceMethod("jobs", Jobs.report_progress)
    complete_job = _ServiceMethod("jobs", Jobs.complete_job)
    fail_job = _ServiceMethod("jobs", Jobs.fail_job)
    cancel_job = _ServiceMethod("jobs", Jobs.cancel_job)
    retry_job = _ServiceMethod("jobs", Jobs.retry_job)
    delete_job = _ServiceMethod("jobs", Jobs.delete_job)
    reschedule_job = _ServiceMethod("jobs", Jobs.reschedule_job)
    bulk_create_jobs = _ServiceMethod("bulk", Bulk.bulk_create_jobs)
    bulk_update_status = _ServiceMethod("bulk", Bulk.bulk_update_status)
    bulk_delete_jobs = _ServiceMethod("bulk", Bulk.bulk_delete_jobs)
    claim_jobs = _ServiceMethod("processors", Processors.claim_jobs)
    complete_jobs = _ServiceMethod("processors", Processors.complete_jobs)
    get_job_stats = _ServiceMethod("stats", Stats.get_job_stats)
    get_job_history = _ServiceMethod("audit", Audit.history)
    get_claim_latency = _ServiceMethod("stats", Stats.get_claim_latency)

    def as_user(self, user_id: str, token: str | None = None) -> VideoJobManager:
        """The same API acting as end user `user_id` (their jobs and their teams' jobs only).

        The database verifies who the user is from a signed token: `token` (the HTTP
        caller's own), else one minted for `user_id` (VJM_JWT_SECRET, or the database's
        `vjm.issue_token` when this manager's service role is vjm_admin).
        """
        return VideoJobManager(self._session.runtime, Caller(user_id=check_user_id(user_id), token=token))

    def as_service(self, name: str) -> VideoJobManager:
        """The same trusted API, recording `name` as the actor of what it does without a named one.

        For a service acting on its own account (an HTTP service token's `sub`, the CLI's
        operator, a billing job): the audit trail then names it, never the database login.
        """
        caller = self._session.caller
        if caller.is_user:
            raise ValidationError("an end user's manager cannot act as a service", field="name")
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ValidationError("a service name must be 1-200 characters", field="name")
        return VideoJobManager(self._session.runtime, Caller(role=caller.role, service=name))

    @property
    def database_url(self) -> str:
        """The URL of the database this manager works on."""
        return self._session.runtime.database_url

    @property
    def service(self) -> str | None:
        """The service principal this trusted manager records as the actor, or None for an end user's."""
        caller = self._session.caller
        return None if caller.is_user else caller.service

    @property
    def user_id(self) -> str | None:
        """The end user this manager acts as, or None for the trusted service."""
        return self._session.caller.user_id


__all__ = ["VideoJobManager", "Caller", "Runtime", "Health", "PoolUsage", "ProjectionStatus", "TreeHeadReport",
           "DeploymentStatus"]
