"""The demo's terminal screen: a rich Live dashboard on a TTY, plain timestamped lines elsewhere.

What it shows comes from the database (the counters from vjm.job_stats, the workers from the
registry, `manager.workers`, the jobs being processed from vjm.jobs) and from the workers'
own lines (which phase a handler is in, what each attempt came to).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..manager.workers import RegisteredWorker
from ..models import Job, JobStats
from .render import counters_table, short_id

STATE_STYLE = {"running": "green", "stopped": "dim", "lost": "bold red", "FROZEN": "bold red"}
PHASES = {"started": "probe", "clip": "encode", "package": "package", "freezing": "FROZEN", "thawed": "package",
          "failing": "failing", "busy": "busy", "cancelled": "cancelled"}


@dataclass
class DemoScreen:
    """Shared state of the demo and its rendering; `note()` is the event log."""

    console: Console
    database: str
    started: float = field(default_factory=time.monotonic)
    stats: JobStats | None = None
    registry: list[RegisteredWorker] = field(default_factory=list)
    processing: list[Job] = field(default_factory=list)
    phases: dict[UUID, str] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)  # workers stopped with SIGSTOP right now
    outcomes: Counter = field(default_factory=Counter)  # (worker, outcome) -> attempts
    changes: int = 0
    log: deque = field(default_factory=lambda: deque(maxlen=14))

    @property
    def live(self) -> bool:
        """True on a terminal: a live screen; False: plain lines."""
        return self.console.is_terminal

    def elapsed(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        """Add a line to the event log (printed at once when not on a terminal)."""
        line = f"[{self.elapsed():5.1f}s] {text}"
        self.log.append(line)
        if not self.live:
            print(line, flush=True)

    def phase_of(self, job_id: UUID, event: str, record: dict[str, Any]) -> None:
        """A handler's line: the phase its job is in now."""
        phase = PHASES.get(event, event)
        self.phases[job_id] = f"{phase} {record['clip']}/{record['clips']}" if event == "clip" else phase

    def status_line(self) -> str:
        """Counters by status and the workers, in one line."""
        s = self.stats
        if s is None:
            return "waiting for the projection ..."
        workers = ", ".join(f"{w.worker_id} {self._state(w)} {w.running}/{w.concurrency}" for w in self.registry)
        return (f"queued {s.queued_jobs} · processing {s.processing_jobs} · completed {s.completed_jobs} · "
                f"failed {s.failed_jobs} · cancelled {s.cancelled_jobs} · total {s.total_jobs} · "
                f"change feed {self.changes} · workers: {workers}")

    def _state(self, worker: RegisteredWorker) -> str:
        return "FROZEN" if worker.worker_id in self.frozen else worker.state

    def render(self) -> Group:
        """The whole live screen."""
        header = Text(f"vjm demo · {self.elapsed():5.1f}s · {self.database} · change feed: {self.changes} "
                      f"changes (LISTEN vjm_jobs)", style="bold")
        parts: list[RenderableType] = [header]
        if self.stats is not None:
            parts.append(counters_table(self.stats, title="jobs by status (from vjm.job_stats, kept by the projector)"))
        parts += [self.workers_table(), self._jobs_table(),
                  Panel("\n".join(self.log) or "starting ...", title="what is happening", title_align="left")]
        return Group(*parts)

    def workers_table(self, title: str = "workers (the registry: manager.workers)") -> Table:
        """One row per registered worker, with what its attempts came to."""
        table = Table(title=title, title_justify="left")
        for name in ("worker", "pid", "state", "jobs running", "last seen", "completed", "failed", "requeued",
                     "lost", "refused"):
            table.add_column(name, no_wrap=True)
        now = datetime.now(UTC)
        for w in self.registry:
            state = self._state(w)
            seen = f"{max(0.0, (now - w.last_seen_at).total_seconds()):.1f}s ago"
            counts = [str(self.outcomes[w.worker_id, outcome]) for outcome in
                      ("completed", "failed", "requeued", "lost", "refused")]
            table.add_row(w.worker_id, str(w.pid), Text(state, style=STATE_STYLE.get(state, "")),
                          f"{w.running}/{w.concurrency}", seen, *counts)
        return table

    def _jobs_table(self) -> Table:
        table = Table(title="jobs being processed (vjm.jobs)", title_justify="left")
        for name in ("job", "worker", "attempt", "upload", "phase", "progress"):
            table.add_column(name, no_wrap=True)
        for job in sorted(self.processing, key=lambda j: j.worker_id or ""):
            table.add_row(short_id(job.job_id), job.worker_id or "-", str(job.attempt),
                          f"{job.original_filename} → {job.platform_target}", self.phases.get(job.job_id, "-"),
                          ProgressBar(total=100, completed=job.progress_percent, width=20))
        return table
