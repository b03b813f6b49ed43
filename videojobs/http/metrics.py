"""Prometheus metrics: this process's own (request latency, event streams, the feed reader, pool use, held worker
calls), and the figures read from the database at each scrape (videojobs/http/metrics_figures.py: transitions by
type, stuck resets, projector lag, jobs, workers, the run queue and its pauses).

Each app has its own registry (several apps may live in one process, e.g. in tests). Transition counts
are the projector's counters by event type (`manager.maintenance.transition_counts()`, kept in its apply
transaction): they count every writer (other API processes, workers on the Python API, the stuck
detector), exactly once, in commit order, and a scrape reads a handful of rows, never the log.

Under `vjm up --workers N` (PROMETHEUS_MULTIPROC_DIR and VJM_MERGE_WORKER_METRICS set for each worker by the
parent, videojobs/config.py) a scrape,
whichever worker answers it, serves every worker's own metrics: request counts and latencies summed
over the workers (those of a worker that died and was restarted included, so counters never go
back), open streams and held calls summed over the live ones, and each live worker's pool and feed
reader labelled by its `pid` (each worker samples them every SAMPLE_SECONDS). The database figures are read
once, by the worker that answers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from videojobs.config import MERGE_METRICS_VARIABLE, METRICS_DIR_VARIABLE
from videojobs.manager import PoolUsage

from .metrics_figures import DatabaseFigures, Figures

SAMPLE_SECONDS = 1.0  # a worker of a multi-process server samples its own gauges this often


class ApiMetrics:
    """The app's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Histogram("vjm_http_request_duration_seconds", "HTTP request latency",
                                  ("method", "route", "status"), registry=r,
                                  buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.pool = Gauge("vjm_db_pool_connections", "Database pool connections", ("pool", "state"), registry=r,
                          multiprocess_mode="liveall")
        self.sse_clients = Gauge("vjm_sse_clients", "Open event streams", registry=r, multiprocess_mode="livesum")
        self.sse_overflows = Counter("vjm_sse_overflow_disconnects",
                                     "Event streams ended because their client fell too far behind", registry=r)
        self.sse_feed_connected = Gauge("vjm_sse_feed_connected",
                                        "1 while the shared change-feed reader holds its connection", registry=r,
                                        multiprocess_mode="liveall")
        self.sse_feed_reconnects = Gauge("vjm_sse_feed_reconnects",
                                         "Times the shared change-feed reader reopened its connection", registry=r,
                                         multiprocess_mode="liveall")
        self.held_calls = Gauge("vjm_worker_held_calls", "Worker calls this process holds open (long polls)",
                                ("call",), registry=r, multiprocess_mode="livesum")
        self.database = DatabaseFigures()
        r.register(self.database)
        # The workers' files to merge, under `vjm up --workers N` (else None: this process's own figures).
        self.merged_dir = (os.environ.get(METRICS_DIR_VARIABLE) or None
                           if os.environ.get(MERGE_METRICS_VARIABLE) == "1" else None)

    def exposition(self) -> bytes:
        """The Prometheus text of a scrape: every worker's own metrics under a multi-process server, and the
        newest database figures."""
        if self.merged_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()  # (no auto_describe: it would read the files once more on registering)
        MultiProcessCollector(merged, path=self.merged_dir)
        merged.register(self.database)
        return generate_latest(merged)

    def observe_database(self, figures: Figures) -> None:
        """The figures this scrape read from the database."""
        self.database.publish(figures)

    def observe_held_calls(self, held: tuple[int, int]) -> None:
        """The long polls this process holds (claims, watched jobs)."""
        self.held_calls.labels(call="claim").set(held[0])
        self.held_calls.labels(call="heartbeat_jobs").set(held[1])

    def observe_feed_hub(self, hub: object | None) -> None:
        """Whether the shared change-feed reader is connected, and how often it reconnected."""
        self.sse_feed_connected.set(1 if hub is not None and getattr(hub, "connected", False) else 0)
        if hub is not None:
            self.sse_feed_reconnects.set(getattr(hub, "reconnects", 0))

    def observe_pool(self, usage: PoolUsage) -> None:
        """Size, idle and in-use connections of one of the manager's pools."""
        self.pool.labels(pool=usage.name, state="in_use").set(usage.in_use)
        self.pool.labels(pool=usage.name, state="idle").set(usage.idle)
        self.pool.labels(pool=usage.name, state="max").set(usage.max_size)
