"""The figures /metrics reads from the database at each scrape: jobs, transitions, the projector, workers, the queue.

They are the same whichever process answers (under `vjm up --workers N` too), so they are not kept in
prometheus_client's metric objects, which a multi-process server sums or labels per process. Each
scrape builds them anew (`Figures`), and `DatabaseFigures` (a collector) serves the newest set: a
label set that is gone from the database (a platform with no queued job left, a resumed pause) is
gone from the next scrape, not kept at its last value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

WORKER_STATES = ("running", "stopped", "lost")
JOB_STATUSES = ("queued", "processing", "completed", "failed", "cancelled")


class DatabaseFigures(Collector):
    """Serves the figures of the newest scrape (before the first that reached the database: every family, with
    zeros where a figure is one number and no sample where it is labelled, as prometheus_client's own
    metrics start)."""

    def __init__(self) -> None:
        self._families: list[Metric] = Figures.nothing_read().families

    def publish(self, figures: Figures) -> None:
        self._families = figures.families

    def collect(self) -> Iterator[Metric]:
        return iter(list(self._families))

    def describe(self) -> Iterable[Metric]:
        return ()  # names vary with the data: registration does not collect


class Figures:
    """One scrape's figures, built from what the manager read."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    @classmethod
    def nothing_read(cls) -> Figures:
        figures = cls()
        figures.transitions({})
        figures.jobs(None)
        figures.projector(None)
        figures.workers(None)
        figures.queue((), ())
        return figures

    def _gauge(self, name: str, text: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, text, labels=list(labels))
        self.families.append(family)
        return family

    def _value(self, name: str, text: str, value: float) -> None:
        self._gauge(name, text).add_metric([], value)

    def jobs(self, stats: Any | None) -> None:
        """Jobs by status (the projection's counters, manager.get_job_stats)."""
        family = self._gauge("vjm_jobs", "Jobs by status (projection counters)", ("status",))
        for status in JOB_STATUSES if stats is not None else ():
            family.add_metric([status], getattr(stats, f"{status}_jobs"))

    def transitions(self, totals: dict[str, int]) -> None:
        """The projector's counters by event type: every writer's transitions, once each, in commit order."""
        family = CounterMetricFamily("vjm_transitions", "Transitions applied to the read models, by event type",
                                     labels=["type"])
        for kind, total in sorted(totals.items()):
            family.add_metric([kind], total)
        resets = CounterMetricFamily("vjm_stuck_resets", "Jobs reset by the stuck-job detector (time_out events)")
        resets.add_metric([], totals.get("time_out", 0))
        self.families += [family, resets]

    def projector(self, projector: Any) -> None:
        """Lag, a stop at an event it cannot apply, and what holds the horizon back (http/health.py)."""
        self._value("vjm_projector_lag_events", "Committed events not yet projected",
                    getattr(projector, "events_behind", 0) or 0)
        self._value("vjm_projector_lag_seconds", "Age of the oldest unprojected event",
                    getattr(projector, "seconds_behind", 0.0) or 0.0)
        stopped = getattr(projector, "stopped", None)
        self._value("vjm_projector_stopped", "1 while the projector is stopped at an event it cannot apply "
                    "(see /healthz)", 1 if stopped else 0)
        self._value("vjm_projector_stopped_position", "Position of the event the projector is stopped at "
                    "(0: projecting)", stopped["position"] if stopped else 0)
        horizon = getattr(projector, "horizon", None) or {}
        for name, text, key in (
                ("held_events", "Committed events held back behind an open transaction", "held_events"),
                ("held_seconds", "Age of the oldest event held back behind an open transaction", "held_seconds"),
                ("blocking_pid", "Backend pid whose open transaction holds the horizon (0: none)", "blocking_pid"),
                ("blocking_xact_seconds", "Age of the transaction that holds the horizon (0: none, or not visible "
                 "to this role)", "blocking_xact_seconds")):
            self._value(f"vjm_projector_horizon_{name}", text, horizon.get(key) or 0)

    def workers(self, workers: Sequence[Any] | None) -> None:
        """The registry (manager.workers.list()) by state, and what its running workers run."""
        family = self._gauge("vjm_workers", "Registered workers by state (lost: no heartbeat for three leases)",
                             ("state",))
        for state in WORKER_STATES if workers is not None else ():
            family.add_metric([state], sum(1 for w in workers or () if w.state == state))
        running = [w for w in workers or () if w.state == "running"]
        self._value("vjm_worker_running_jobs", "Jobs the running workers' handlers run now",
                    sum(w.running for w in running))
        self._value("vjm_worker_slots", "Slots (concurrency) of the running workers",
                    sum(w.concurrency for w in running))

    def queue(self, depths: Sequence[Any], pauses: Sequence[dict[str, Any]]) -> None:
        """The run queue (manager.maintenance.queue_depth()) and the pauses in force."""
        jobs = self._gauge("vjm_queue_jobs", "Queued jobs by platform and priority; claimable: none held back",
                           ("platform", "priority", "claimable"))
        oldest: dict[str, float] = {}
        for d in depths:
            jobs.add_metric([d.platform_target, str(d.priority), "true"], d.claimable)
            jobs.add_metric([d.platform_target, str(d.priority), "false"], d.queued - d.claimable)
            if d.claimable:
                oldest[d.platform_target] = max(oldest.get(d.platform_target, 0.0), d.oldest_claimable_seconds)
        waited = self._gauge("vjm_queue_oldest_claimable_seconds",
                             "How long the oldest claimable job of a platform has waited", ("platform",))
        for platform, seconds in oldest.items():
            waited.add_metric([platform], seconds)
        paused = self._gauge("vjm_queue_paused", "1 for each platform whose claims are paused ('*': all)",
                             ("platform",))
        for pause in pauses:
            paused.add_metric([pause["platform"]], 1)
