"""Prometheus metrics: request latency, transitions by type, stuck resets, projector lag, pool use, streams,
workers (the registry by state, their running jobs and slots, the long polls held), the run queue and its pauses.

Each app has its own registry (several apps may live in one process, e.g. in tests).
Transition counts are the projector's counters by event type (`manager.maintenance.transition_counts()`,
kept in its apply transaction): they count every writer (other API processes, workers on the
Python API, the stuck detector), exactly once, in commit order, and a scrape reads a handful
of rows, never the log.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videojobs.manager import PoolUsage

WORKER_STATES = ("running", "stopped", "lost")


class ApiMetrics:
    """The app's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Histogram("vjm_http_request_duration_seconds", "HTTP request latency",
                                  ("method", "route", "status"), registry=r,
                                  buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.transitions = Counter("vjm_transitions", "Transitions applied to the read models, by event type",
                                   ("type",), registry=r)
        self.stuck_resets = Counter("vjm_stuck_resets", "Jobs reset by the stuck-job detector (time_out events)",
                                    registry=r)
        self.jobs = Gauge("vjm_jobs", "Jobs by status (projection counters)", ("status",), registry=r)
        self._add_projector_gauges(r)
        self._add_connection_gauges(r)
        self._add_worker_gauges(r)
        self._seen: dict[str, int] = {}  # the totals exported so far, by type

    def _add_projector_gauges(self, r: CollectorRegistry) -> None:
        self.lag_events = Gauge("vjm_projector_lag_events", "Committed events not yet projected", registry=r)
        self.lag_seconds = Gauge("vjm_projector_lag_seconds", "Age of the oldest unprojected event", registry=r)
        self.stopped = Gauge("vjm_projector_stopped",
                             "1 while the projector is stopped at an event it cannot apply (see /healthz)", registry=r)
        self.stopped_position = Gauge("vjm_projector_stopped_position",
                                      "Position of the event the projector is stopped at (0: projecting)", registry=r)
        self.horizon_held_events = Gauge("vjm_projector_horizon_held_events",
                                         "Committed events held back behind an open transaction", registry=r)
        self.horizon_held_seconds = Gauge("vjm_projector_horizon_held_seconds",
                                          "Age of the oldest event held back behind an open transaction", registry=r)
        self.horizon_blocking_pid = Gauge("vjm_projector_horizon_blocking_pid",
                                          "Backend pid whose open transaction holds the horizon (0: none)",
                                          registry=r)
        self.horizon_blocking_xact_seconds = Gauge(
            "vjm_projector_horizon_blocking_xact_seconds",
            "Age of the transaction that holds the horizon (0: none, or not visible to this role)", registry=r)

    def _add_connection_gauges(self, r: CollectorRegistry) -> None:
        self.pool = Gauge("vjm_db_pool_connections", "Database pool connections", ("pool", "state"), registry=r)
        self.sse_clients = Gauge("vjm_sse_clients", "Open event streams", registry=r)
        self.sse_overflows = Counter("vjm_sse_overflow_disconnects",
                                     "Event streams ended because their client fell too far behind", registry=r)
        self.sse_feed_connected = Gauge("vjm_sse_feed_connected",
                                        "1 while the shared change-feed reader holds its connection", registry=r)
        self.sse_feed_reconnects = Gauge("vjm_sse_feed_reconnects",
                                         "Times the shared change-feed reader reopened its connection", registry=r)

    def _add_worker_gauges(self, r: CollectorRegistry) -> None:
        self.workers = Gauge("vjm_workers", "Registered workers by state (lost: no heartbeat for three leases)",
                             ("state",), registry=r)
        self.worker_running_jobs = Gauge("vjm_worker_running_jobs", "Jobs the running workers' handlers run now",
                                         registry=r)
        self.worker_slots = Gauge("vjm_worker_slots", "Slots (concurrency) of the running workers", registry=r)
        self.held_calls = Gauge("vjm_worker_held_calls", "Worker calls this process holds open (long polls)",
                                ("call",), registry=r)
        self.queue_jobs = Gauge("vjm_queue_jobs", "Queued jobs by platform and priority; claimable: none held back",
                                ("platform", "priority", "claimable"), registry=r)
        self.queue_oldest = Gauge("vjm_queue_oldest_claimable_seconds",
                                  "How long the oldest claimable job of a platform has waited", ("platform",), registry=r)
        self.queue_paused = Gauge("vjm_queue_paused", "1 for each platform whose claims are paused ('*': all)",
                                  ("platform",), registry=r)

    def observe_queue(self, depths: Sequence[Any]) -> None:
        """The run queue (manager.maintenance.queue_depth()): gone combinations drop out, not stay at their last value."""
        self.queue_jobs.clear()
        self.queue_oldest.clear()
        oldest: dict[str, float] = {}
        for d in depths:
            labels = {"platform": d.platform_target, "priority": str(d.priority)}
            self.queue_jobs.labels(**labels, claimable="true").set(d.claimable)
            self.queue_jobs.labels(**labels, claimable="false").set(d.queued - d.claimable)
            if d.claimable:
                oldest[d.platform_target] = max(oldest.get(d.platform_target, 0.0), d.oldest_claimable_seconds)
        for platform, seconds in oldest.items():
            self.queue_oldest.labels(platform=platform).set(seconds)

    def observe_pauses(self, pauses: Sequence[dict[str, Any]]) -> None:
        """The pauses in force (manager.queue.policy().pauses): a resumed platform drops out."""
        self.queue_paused.clear()
        for pause in pauses:
            self.queue_paused.labels(platform=pause["platform"]).set(1)

    def observe_workers(self, workers: Sequence[Any], held: tuple[int, int]) -> None:
        """The registry (manager.workers.list()) by state, and the long polls held here (claims, watched jobs)."""
        running = [w for w in workers if w.state == "running"]
        for state in WORKER_STATES:
            self.workers.labels(state=state).set(sum(1 for w in workers if w.state == state))
        self.worker_running_jobs.set(sum(w.running for w in running))
        self.worker_slots.set(sum(w.concurrency for w in running))
        self.held_calls.labels(call="claim").set(held[0])
        self.held_calls.labels(call="heartbeat_jobs").set(held[1])

    def observe_transition_totals(self, totals: dict[str, int]) -> None:
        """Advance the counters to the projector's totals by type (they only grow; a rebuild recounts the same)."""
        for kind, total in totals.items():
            grown = total - self._seen.get(kind, 0)
            if grown > 0:
                self.transitions.labels(type=kind).inc(grown)
                if kind == "time_out":
                    self.stuck_resets.inc(grown)
                self._seen[kind] = total

    def observe_horizon(self, horizon: dict[str, Any] | None) -> None:
        """What holds the projection horizon back (http/health.py horizon_report), or nothing."""
        horizon = horizon or {}
        self.horizon_held_events.set(horizon.get("held_events") or 0)
        self.horizon_held_seconds.set(horizon.get("held_seconds") or 0.0)
        self.horizon_blocking_pid.set(horizon.get("blocking_pid") or 0)
        self.horizon_blocking_xact_seconds.set(horizon.get("blocking_xact_seconds") or 0.0)

    def observe_stop(self, stopped: dict[str, Any] | None) -> None:
        """Where the projector is stopped (http/health.py `stopped`), or nothing."""
        self.stopped.set(1 if stopped else 0)
        self.stopped_position.set(stopped["position"] if stopped else 0)

    def observe_feed_hub(self, hub: Any) -> None:
        """Whether the shared change-feed reader is connected, and how often it reconnected."""
        self.sse_feed_connected.set(1 if hub is not None and hub.connected else 0)
        if hub is not None:
            self.sse_feed_reconnects.set(hub.reconnects)

    def observe_pool(self, usage: PoolUsage) -> None:
        """Size, idle and in-use connections of one of the manager's pools."""
        self.pool.labels(pool=usage.name, state="in_use").set(usage.in_use)
        self.pool.labels(pool=usage.name, state="idle").set(usage.idle)
        self.pool.labels(pool=usage.name, state="max").set(usage.max_size)


class RequestTimer:
    """ASGI middleware observing every request's latency under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(method=scope.get("method", "?"), route=route,
                                         status=str(status)).observe(time.perf_counter() - started)
