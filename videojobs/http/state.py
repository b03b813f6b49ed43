"""What the app holds while it runs: the trusted manager, settings, metrics, options, the feed hub."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import structlog

from videojobs import DatabaseUnavailable, Settings, VideoJobManager
from videojobs.manager.subscriptions import ChangeFeedHub

from .metrics import SAMPLE_SECONDS, ApiMetrics
from .worker_waits import WorkerWaits

log = structlog.get_logger("vjm.http")


def long_poll_cap() -> float:
    """VJM_HTTP_MAX_WAIT (default 30): the longest the server holds a claim or a heartbeat, in seconds.
    Set it under the idle timeout of any proxy in front of the API."""
    return min(30.0, max(0.0, float(os.environ.get("VJM_HTTP_MAX_WAIT", "30"))))


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Tunables of the HTTP layer (defaults suit production; tests shorten the intervals)."""

    max_body_bytes: int = 64 * 1024
    sse_heartbeat_seconds: float = 15.0
    sse_poll_seconds: float = 1.0
    sse_queue_size: int = 1000  # changes buffered per stream; a stream that falls further behind is ended
    sse_send_timeout_seconds: float = 30.0  # a write to a client that stopped reading ends its stream after this
    sse_page_size: int = 500  # change-feed rows per read (the shared reader and each stream's catch-up)
    retry_after_seconds: int = 5
    long_poll_max_seconds: float = field(default_factory=long_poll_cap)  # a worker's `wait`, capped
    long_poll_recheck_seconds: float = 1.0  # a held call checks again on its own (and for its client) this often


@dataclass(slots=True)
class AppState:
    """The trusted (service) manager, once the app has one, and everything requests share."""

    settings: Settings
    options: HttpOptions
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    manager: VideoJobManager | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    feed_hub: ChangeFeedHub | None = None
    worker_waits: WorkerWaits = field(default_factory=WorkerWaits)
    _hub_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def observe_process(self) -> None:
        """This process's own gauges: the feed reader, the held worker calls, the pools."""
        self.metrics.observe_feed_hub(self.feed_hub)
        self.metrics.observe_held_calls(self.worker_waits.waiting)
        if self.manager is not None:
            for usage in self.manager.maintenance.pool_usage():
                self.metrics.observe_pool(usage)

    async def sample_process(self) -> None:
        """observe_process every SAMPLE_SECONDS, until cancelled (a worker of a multi-process server)."""
        while True:
            try:
                self.observe_process()
            except Exception as exc:  # noqa: BLE001 - a sample is skipped, the next one is taken
                log.warning("metrics_sample_failed", error=repr(exc)[:200])
            await asyncio.sleep(SAMPLE_SECONDS)  # poll: the gauges have no change events

    def require_manager(self) -> VideoJobManager:
        """The service manager; DatabaseUnavailable while the app has none (starting, or its database is down)."""
        if self.manager is None:
            raise DatabaseUnavailable("the job manager is not connected yet")
        return self.manager

    async def require_feed_hub(self) -> ChangeFeedHub:
        """The one change-feed reader of this app, shared by every event stream; started on first use.

        The lifespan starts it with the app and closes it at shutdown (ending every stream);
        an app served without its lifespan starts it here, on the first stream.
        """
        async with self._hub_lock:
            if self.feed_hub is None:
                options = self.options
                self.feed_hub = await self.require_manager().subscriptions.open_hub(
                    page_size=options.sse_page_size, queue_size=options.sse_queue_size,
                    poll_interval=options.sse_poll_seconds, database_url=self.extras.get("database_url"))
            return self.feed_hub

    async def close_feed_hub(self) -> None:
        """Close the feed hub, if one runs: every event stream ends (clients resume with Last-Event-ID), and
        every held worker call answers."""
        await self.worker_waits.close()  # held worker calls answer now: uvicorn waits for every response
        async with self._hub_lock:
            hub, self.feed_hub = self.feed_hub, None
        if hub is not None:
            await hub.close()
