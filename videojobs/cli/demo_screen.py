"""The demo's terminal screen: a rich Live dashboard on a TTY, plain timestamped lines elsewhere."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from uuid import UUID

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..models import JobStats
from .render import counters_table, short_id

WORKER_STYLE = {"working": "yellow", "idle": "dim", "HUNG": "bold red", "done": "green", "recovering": "magenta"}


@dataclass
class WorkerView:
    """What one simulated processor is doing, as the screen shows it."""

    state: str = "idle"
    job_id: UUID | None = None
    attempt: int = 0
    percent: float = 0.0
    label: str = ""
    finished: int = 0
    failed: int = 0


@dataclass
class DemoScreen:
    """Shared state of the demo and its rendering; `note()` is the event log."""

    console: Console
    database: str
    started: float = field(default_factory=time.monotonic)
    workers: dict[str, WorkerView] = field(default_factory=dict)
    stats: JobStats | None = None
    changes: int = 0
    log: deque = field(default_factory=lambda: deque(maxlen=12))

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

    def status_line(self) -> str:
        """Counters by status in one line."""
        s = self.stats
        if s is None:
            return "waiting for the projection ..."
        return (f"queued {s.queued_jobs} · processing {s.processing_jobs} · completed {s.completed_jobs} · "
                f"failed {s.failed_jobs} · cancelled {s.cancelled_jobs} · total {s.total_jobs} · "
                f"change feed {self.changes}")

    def render(self) -> Group:
        """The whole live screen."""
        header = Text(f"vjm demo · {self.elapsed():5.1f}s · {self.database} · change feed: {self.changes} "
                      f"changes (LISTEN vjm_jobs)", style="bold")
        parts: list[RenderableType] = [header]
        if self.stats is not None:
            parts.append(counters_table(self.stats, title="jobs by status (from vjm.job_stats, kept by the projector)"))
        parts.append(self._workers_table())
        parts.append(Panel("\n".join(self.log) or "starting ...", title="what is happening", title_align="left"))
        return Group(*parts)

    def _workers_table(self) -> Table:
        table = Table(title="processors", title_justify="left")
        for name in ("worker", "state", "job", "attempt", "upload", "progress", "done", "failed"):
            table.add_column(name, no_wrap=True)
        for name, view in self.workers.items():
            bar = ProgressBar(total=100, completed=view.percent, width=20) if view.job_id else Text("")
            table.add_row(name, Text(view.state, style=WORKER_STYLE.get(view.state, "")),
                          short_id(view.job_id) if view.job_id else "-", str(view.attempt or "-"), view.label,
                          bar, str(view.finished), str(view.failed))
        return table
