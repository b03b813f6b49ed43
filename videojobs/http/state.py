"""What the app holds while it runs: the trusted manager, settings, metrics, options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videojobs import Settings, VideoJobManager

from .metrics import ApiMetrics


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Tunables of the HTTP layer (defaults suit production; tests shorten the intervals)."""

    max_body_bytes: int = 64 * 1024
    sse_heartbeat_seconds: float = 15.0
    sse_poll_seconds: float = 1.0
    sse_team_refresh_seconds: float = 30.0
    retry_after_seconds: int = 5


@dataclass(slots=True)
class AppState:
    """The trusted (service) manager, once the app has one, and everything requests share."""

    settings: Settings
    options: HttpOptions
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    manager: VideoJobManager | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def require_manager(self) -> VideoJobManager:
        """The service manager; DatabaseUnavailable while the app has none (starting, or its database is down)."""
        if self.manager is None:
            from statemachine import DatabaseUnavailable

            raise DatabaseUnavailable("the job manager is not connected yet")
        return self.manager
