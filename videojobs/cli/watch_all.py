"""`vjm watch --all`: the operator's screen in a terminal, the twin of the web operator console.

Every tenant's jobs at once, for a service token's or an admin's database access: the counters by
status and platform (manager.get_job_stats(), the projection's statistics), the changes per status in
the last minute (counted from the change feed as it arrives), the run queue by platform and priority
with the oldest claimable job's wait, the projection's lag and who holds its horizon back, the
workers the registry knows (running, stopped, lost) and the processing jobs idle past the stuck
timeout. The screen is redrawn when the change feed brings something, and every `--interval`
seconds for what the feed does not carry (lag, the registry, idle time). Off a terminal it prints one
line, `operator {json}`, each time the summary changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from store.leases import QueueDepth
from store.projections import StuckJob
from store.workers import RegisteredWorker

from ..manager import ProjectionStatus, VideoJobManager
from ..models import JobStats
from .render import counters_table, platform_table, short_id

WINDOW = 60.0  # seconds of changes counted as throughput


@dataclass
class OperatorView:
    """What the operator's screen shows; `refresh` reads it, `saw` counts the feed."""

    stuck_timeout: float
    stats: JobStats | None = None
    depth: list[QueueDepth] = field(default_factory=list)
    projection: ProjectionStatus | None = None
    workers: list[RegisteredWorker] = field(default_factory=list)
    stuck: list[StuckJob] = field(default_factory=list)
    recent: deque[tuple[float, str]] = field(default_factory=deque)  # (monotonic time, status) of changes

    def saw(self, status: str) -> None:
        self.recent.append((time.monotonic(), status))

    def per_minute(self) -> dict[str, int]:
        """Changes by the status they led to, in the last WINDOW seconds."""
        while self.recent and self.recent[0][0] < time.monotonic() - WINDOW:
            self.recent.popleft()
        return dict(Counter(status for _, status in self.recent))

    async def refresh(self, manager: VideoJobManager) -> None:
        self.stats = await manager.get_job_stats()
        self.depth = await manager.maintenance.queue_depth()
        self.projection = await manager.maintenance.projection_behind()
        self.workers = await manager.workers.list()
        self.stuck = await manager.maintenance.stuck_jobs(self.stuck_timeout, limit=20)

    def summary(self) -> dict:
        """The figures of the screen, for a line off a terminal (and for scripts)."""
        stats, projection = self.stats, self.projection
        return {
            "jobs": {s: getattr(stats, f"{s}_jobs") for s in ("queued", "processing", "completed", "failed",
                                                              "cancelled", "total")} if stats else None,
            "per_minute": self.per_minute(),
            "queued_by_platform": _queued_by_platform(self.depth),
            "oldest_claimable_seconds": round(max((d.oldest_claimable_seconds for d in self.depth), default=0.0), 1),
            "events_behind": projection.events_behind if projection else None,
            "horizon_held_by": projection.horizon.blocking_pid if projection and projection.horizon else None,
            "workers": dict(Counter(w.state for w in self.workers)),
            "stuck": [str(s.job_id) for s in self.stuck],
        }

    def render(self) -> Group:
        header = Text(f"vjm watch --all · every tenant · {datetime.now(UTC):%H:%M:%S} UTC · Ctrl-C to stop",
                      style="bold")
        parts: list[RenderableType] = [header]
        if self.stats is not None:
            parts += [counters_table(self.stats), platform_table(self.stats)]
        rate = self.per_minute()
        parts.append(Text("last minute: " + (", ".join(f"{n} {s}" for s, n in sorted(rate.items())) or "no changes")))
        parts += [_queue_table(self.depth), Text(_projection_line(self.projection)), _workers_table(self.workers),
                  Text(_stuck_line(self.stuck, self.stuck_timeout))]
        return Group(*parts)


def _queued_by_platform(depth: list[QueueDepth]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for row in depth:
        counts[row.platform_target] += row.queued
    return dict(counts)


def _queue_table(depth: list[QueueDepth]) -> Table:
    table = Table(title="run queue", title_justify="left")
    for name in ("platform", "priority", "queued", "claimable", "oldest wait"):
        table.add_column(name, justify="left" if name == "platform" else "right")
    for row in depth:
        table.add_row(row.platform_target, str(row.priority), str(row.queued), str(row.claimable),
                      f"{row.oldest_claimable_seconds:.0f}s")
    return table


def _projection_line(status: ProjectionStatus | None) -> str:
    if status is None:
        return "projection: unknown"
    line = f"projection: {status.events_behind} event(s) behind ({status.seconds_behind:.1f}s)"
    if status.horizon is not None:
        line += f", {status.horizon.held_events} held by an open transaction (pid {status.horizon.blocking_pid})"
    if status.fault is not None:
        line += f", STOPPED at event {status.fault.position}: {status.fault.error}"
    return line


def _workers_table(workers: list[RegisteredWorker]) -> Table:
    table = Table(title="workers", title_justify="left")
    for name in ("worker", "host", "state", "running", "last seen"):
        table.add_column(name)
    for w in workers:
        table.add_row(w.worker_id, f"{w.host}:{w.pid}", w.state, f"{w.running}/{w.concurrency}",
                      f"{w.last_seen_at:%H:%M:%S}")
    return table


def _stuck_line(stuck: list[StuckJob], timeout: float) -> str:
    if not stuck:
        return f"stuck: none idle past {timeout:g}s"
    shown = ", ".join(f"{short_id(s.job_id)} ({s.idle_seconds:.0f}s)" for s in stuck[:10])
    return f"stuck: {len(stuck)} idle past {timeout:g}s: {shown}"


async def watch_all(manager: VideoJobManager, view: OperatorView, *, after: int, interval: float,
                    live: Live | None, stop: asyncio.Event, deadline: float | None) -> None:
    """Follow the change feed after `after` and redraw until `stop` or the deadline."""
    changed = asyncio.Event()
    feeder = asyncio.create_task(_feed(manager, view, changed, after))
    printed = None
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            await view.refresh(manager)
            if live is not None:
                live.update(view.render())
            elif (line := json.dumps(view.summary(), sort_keys=True)) != printed:
                print(f"operator {line}", flush=True)
                printed = line
            await _next_turn(changed, stop, interval, deadline)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder


async def _feed(manager: VideoJobManager, view: OperatorView, changed: asyncio.Event, after: int) -> None:
    subscription = manager.subscriptions.subscribe(after=after, poll_interval=0.5)
    try:
        async for change in subscription:
            view.saw(change.status)
            changed.set()
    finally:
        await subscription.close()


async def _next_turn(changed: asyncio.Event, stop: asyncio.Event, interval: float, deadline: float | None) -> None:
    """Wait for a change, a stop, or `interval` seconds (and no longer than the deadline)."""
    wait = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
    waiters = {asyncio.create_task(changed.wait()), asyncio.create_task(stop.wait())}
    try:
        await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
    changed.clear()
