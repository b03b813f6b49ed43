"""VideoJobManager: the whole job API in Python, composed of small parts (one module each)."""

from __future__ import annotations

from statemachine.validation import check_user_id

from .audit import AuditMixin
from .bulk import BulkMixin
from .core import Caller, ManagerCore
from .feeds import FeedsMixin
from .health import Health, HealthMixin
from .maintenance import MaintenanceMixin
from .processors import ProcessorsMixin
from .reads import ReadsMixin
from .stats import StatsMixin
from .teams import TeamsMixin
from .writes import WritesMixin


class VideoJobManager(BulkMixin, WritesMixin, ReadsMixin, ProcessorsMixin, StatsMixin, TeamsMixin,
                      MaintenanceMixin, AuditMixin, HealthMixin, FeedsMixin, ManagerCore):
    """Create, read, change and audit video jobs.

    The plain manager acts as a trusted service; `as_user(user_id)` returns the same
    API scoped by Row Level Security to what that user may see and do.
    """

    def as_user(self, user_id: str, token: str | None = None) -> VideoJobManager:
        """The same API acting as end user `user_id` (their jobs and their teams' jobs only).

        The database verifies who the user is from a signed token: `token` (the HTTP
        caller's own), else one minted for `user_id` (VJM_JWT_SECRET, or the database's
        `vjm.issue_token` when this manager's service role is vjm_admin).
        """
        check_user_id(user_id)
        scoped = VideoJobManager(self._pool, database_url=self._url, user_pool=self._user_pool,
                                 caller=Caller(user_id=user_id, token=token),
                                 watcher=self._watcher, consistency_timeout=self._consistency_timeout,
                                 writes=self._writes, tokens=self._tokens)
        scoped.listeners = self.listeners
        return scoped

    def as_service(self, name: str) -> VideoJobManager:
        """The same trusted API, recording `name` as the actor of what it does without a named one.

        For a service acting on its own account (an HTTP service token's `sub`, the CLI's
        operator, a billing job): the audit trail then names it, never the database login.
        """
        from statemachine import ValidationError

        if self._caller.is_user:
            raise ValidationError("an end user's manager cannot act as a service", field="name")
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ValidationError("a service name must be 1-200 characters", field="name")
        named = VideoJobManager(self._pool, database_url=self._url, user_pool=self._user_pool,
                                caller=Caller(role=self._caller.role, service=name),
                                watcher=self._watcher, consistency_timeout=self._consistency_timeout,
                                writes=self._writes, tokens=self._tokens)
        named.listeners = self.listeners
        return named

    @property
    def service(self) -> str | None:
        """The service principal this trusted manager records as the actor, or None for an end user's."""
        return None if self._caller.is_user else self._caller.service

    @property
    def user_id(self) -> str | None:
        """The end user this manager acts as, or None for the trusted service."""
        return self._caller.user_id


__all__ = ["VideoJobManager", "Caller", "Health"]
