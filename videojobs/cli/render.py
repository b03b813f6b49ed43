"""Rich renderables shared by the commands: job tables, counters, statistics, claim latency, histories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from ..models import JOB_STATUSES, ClaimLatency, Event, Job, JobStats

STATUS_STYLE = {"queued": "cyan", "processing": "yellow", "completed": "green", "failed": "red",
                "cancelled": "magenta", "deleted": "dim"}


PIPED_WIDTH = 4000  # tables are as wide as their content (expand=False); this only lifts the limit


def make_console() -> Console:
    """A console on stdout; when it is not a terminal, plain text as wide as the data (a pipe or a file
    gets every column whole, never an ellipsis or a value cut mid-word)."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=PIPED_WIDTH, no_color=True)
    return console


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def short_id(job_id: object) -> str:
    """The last 8 characters of a job id, as the tables show it."""
    return "…" + str(job_id)[-8:]


def when(moment: datetime | None, *, precise: bool = False) -> str:
    """A timestamp in UTC, ISO 8601 with the zone named ('2026-12-06T03:07:19Z', or to the millisecond
    when `precise`): the one convention of the CLI and the dashboard."""
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds" if precise else "seconds").replace("+00:00", "Z")


def job_table(jobs: Iterable[Job], *, title: str | None = None, full_ids: bool = True) -> Table:
    """One row per job: id, owner, status, platform, preset, priority, progress, attempt, file, created, runs at.

    Full ids by default: what `vjm jobs show` and the other commands take, copied as printed.
    """
    table = Table(title=title, title_justify="left", expand=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("job", "left"), ("user", "left"), ("status", "left"), ("platform", "left"), ("preset", "left"),
        ("prio", "right"), ("progress", "right"), ("attempt", "right"), ("file", "left"), ("created (UTC)", "left"),
        ("runs at (UTC)", "left"))
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    for job in jobs:
        table.add_row(str(job.job_id) if full_ids else short_id(job.job_id), job.user_id, status_text(job.status),
                      job.platform_target, job.quality_preset, str(job.priority), f"{job.progress_percent:.0f}%",
                      f"{job.attempt}/{job.max_attempts}", job.original_filename, when(job.created_at),
                      when(job.run_at) if job.run_at else "")
    return table


def counters_table(stats: JobStats, *, title: str | None = "jobs by status") -> Table:
    """Counters by status and the total, in one row."""
    table = Table(title=title, title_justify="left")
    for status in JOB_STATUSES:
        table.add_column(status_text(status.value), justify="right")
    table.add_column("total", justify="right")
    table.add_row(*(str(getattr(stats, f"{s.value}_jobs")) for s in JOB_STATUSES), str(stats.total_jobs))
    return table


def platform_table(stats: JobStats) -> Table:
    """Jobs by platform and status."""
    table = Table(title="by platform", title_justify="left")
    table.add_column("platform")
    for status in JOB_STATUSES:
        table.add_column(status.value, justify="right")
    table.add_column("total", justify="right")
    for row in stats.by_platform:
        table.add_row(row.platform_target, *(str(getattr(row, f"{s.value}_jobs")) for s in JOB_STATUSES),
                      str(row.total_jobs))
    return table


def stats_renderable(stats: JobStats) -> Group:
    """Counters, processing times, the platform breakdown and the daily series."""
    average = f"{stats.average_processing_time:.1f}s" if stats.average_processing_time is not None else "-"
    times = Text(f"processing time: total {stats.total_processing_time:.1f}s, average {average} per finished job")
    daily = Table(title="by day (UTC)", title_justify="left")
    for name in ("day", "completed", "failed", "cancelled", "processing s"):
        daily.add_column(name, justify="left" if name == "day" else "right")
    for day in stats.daily:
        daily.add_row(str(day.day), str(day.completed_jobs), str(day.failed_jobs), str(day.cancelled_jobs),
                      f"{day.processing_seconds:.1f}")
    parts: list[RenderableType] = [counters_table(stats), times, platform_table(stats)]
    return Group(*parts, daily) if stats.daily else Group(*parts)


def claim_latency_table(rows: Iterable[ClaimLatency], hours: int) -> Table:
    """Per platform: jobs claimed in the window and how long they waited (median, 95th percentile, longest)."""
    table = Table(title=f"claim latency, last {hours} h", title_justify="left")
    table.add_column("platform")
    for name in ("claims", "p50 s", "p95 s", "max s"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(row.platform_target, str(row.claims), f"{row.p50_seconds:.3f}", f"{row.p95_seconds:.3f}",
                      f"{row.max_seconds:.3f}")
    return table


def history_table(events: Iterable[Event], *, title: str | None = None, compact: bool = False) -> Table:
    """A job's events in order: position, version, trigger, transition, attempt, actor, time (and data)."""
    table = Table(title=title, title_justify="left")
    names = ("#", "v", "event", "from", "to", "attempt", "actor", "at (UTC)") + (() if compact else ("data",))
    for name in names:
        wraps = name == "data"
        table.add_column(name, justify="right" if name in ("#", "v", "attempt") else "left", no_wrap=not wraps,
                         overflow="fold" if wraps else "ellipsis")
    for event in events:
        data = ", ".join(f"{k}={_compact(v)}" for k, v in event.data.items() if v is not None)
        cells = [str(event.position), str(event.version), event.type.value,
                 event.from_state.value if event.from_state else "-", status_text(event.to_state.value),
                 str(event.attempt), event.actor]
        cells += [f"{event.occurred_at:%H:%M:%S.%f}"[:12]] if compact else [when(event.occurred_at), data]
        table.add_row(*cells)
    return table


def _compact(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-3 else "0"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def job_details(job: Job) -> Table:
    """One job as a two-column table of fields."""
    table = Table(show_header=False, title=f"job {job.job_id}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for name, value in job.model_dump().items():
        shown = (status_text(value) if name == "status" else when(value, precise=True) if isinstance(value, datetime)
                 else str(value if value is not None else "-"))
        table.add_row(name, shown)
    return table
