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
each the same bound method as its service's.
"""

from __future__ import annotations

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


class VideoJobManager:
    """Create, read, change and audit video jobs.

    The plain manager acts as a trusted service; `as_user(user_id)` returns the same
    API scoped by Row Level Security to what that user may see and do.
    """

    def __init__(self, runtime: Runtime, caller: Caller = Caller()) -> None:
        session = self._session = Session(runtime, caller)
        self.jobs, self.bulk = Jobs(session), Bulk(session)
        self.processors, self.stats, self.teams = Processors(session), Stats(session), Teams(session)
        self.audit, self.maintenance = Audit(session), Maintenance(session)
        self.subscriptions, self.workers = Subscriptions(session), Workers(session)
        self.queue = Queue(session)
        self._name_the_specification_api()

    def _name_the_specification_api(self) -> None:
        jobs = self.jobs
        self.create_job, self.get_job_by_id, self.list_jobs = jobs.create_job, jobs.get_job_by_id, jobs.list_jobs
        self.get_user_jobs, self.get_team_jobs = jobs.get_user_jobs, jobs.get_team_jobs
        self.update_job_status, self.update_job_metadata = jobs.update_job_status, jobs.update_job_metadata
        self.start_processing, self.report_progress = jobs.start_processing, jobs.report_progress
        self.complete_job, self.fail_job = jobs.complete_job, jobs.fail_job
        self.cancel_job, self.retry_job, self.delete_job = jobs.cancel_job, jobs.retry_job, jobs.delete_job
        self.reschedule_job = jobs.reschedule_job
        self.bulk_create_jobs, self.bulk_update_status = self.bulk.bulk_create_jobs, self.bulk.bulk_update_status
        self.bulk_delete_jobs = self.bulk.bulk_delete_jobs
        self.claim_jobs, self.complete_jobs = self.processors.claim_jobs, self.processors.complete_jobs
        self.get_job_stats, self.get_job_history = self.stats.get_job_stats, self.audit.history
        self.get_claim_latency = self.stats.get_claim_latency

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
