"""A second, Python-side check of what an end user's event stream may carry.

The database already decided what the stream carries: its catch-up reads the feed
acting as the user (RLS), and the shared feed hub asks vjm.job_changes_visible, which
applies the same RLS policy per user (listeners/feed_hub.py). This guard re-checks every change against the user's
id and team ids, as `manager.as_user(sub).list_teams()` reports them, refreshed
every `refresh_seconds`. A change that fails the cached check triggers one fresh
lookup before it is dropped, so a new membership never loses an event, while a
change RLS should not have let through is never emitted (and is logged).
"""

from __future__ import annotations

import time
from uuid import UUID

import structlog

from videojobs import VideoJobManager
from videojobs.models import JobChange

log = structlog.get_logger("vjm.http.stream")
MAX_TEAMS = 1000


class VisibilityGuard:
    """Does a change belong to the user's own or team jobs?"""

    def __init__(self, user_manager: VideoJobManager, user_id: str, refresh_seconds: float):
        self._manager, self._user_id, self._refresh_seconds = user_manager, user_id, refresh_seconds
        self._teams: frozenset[UUID] = frozenset()
        self._fetched_at = float("-inf")

    async def refresh(self) -> None:
        """Read the user's teams now (through RLS)."""
        teams = await self._manager.list_teams(MAX_TEAMS)
        self._teams = frozenset(team.team_id for team in teams)
        self._fetched_at = time.monotonic()

    async def allows(self, change: JobChange) -> bool:
        """True if the user may see this change."""
        if time.monotonic() - self._fetched_at > self._refresh_seconds:
            await self.refresh()
        if self._visible(change):
            return True
        await self.refresh()
        if self._visible(change):
            return True
        log.error("stream_change_filtered", seq=change.seq, job_id=str(change.job_id), user_id=self._user_id)
        return False

    def _visible(self, change: JobChange) -> bool:
        return change.user_id == self._user_id or (change.team_id is not None and change.team_id in self._teams)
