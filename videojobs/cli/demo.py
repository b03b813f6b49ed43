"""`vjm demo`: three users, two teams, 50 uploads and four real `vjm worker` processes on a throwaway PostgreSQL.

About half a minute, start to finish. Uploads arrive (in bulk, then one by one); four worker
processes (videojobs.Worker running videojobs.cli.demo_handlers:encode) claim them and
report progress phase by phase. Damaged uploads fail and their owners retry them; a busy
encoder re-queues a job with backoff; carol cancels a job mid-encode and its handler is seen
stopping; and worker-4 hangs, frozen with SIGSTOP mid-job: its lease runs out, the stuck
detector times the job out, another worker re-runs and finishes it, and then SIGCONT lets
the frozen worker send its late complete, which attempt fencing refuses. The projector keeps
vjm.jobs and the statistics up to date from the events all along. At the end: the
statistics, the workers, the rescued job's history, and the audit-chain and projection
verifications.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time

from rich.console import Console
from rich.live import Live

from ..config import Settings
from ..connect import connect
from ..database import probe_database, provide_database
from ..errors import DatabaseUnavailable, VJMError
from ..logs import configure_logging
from ..manager import VideoJobManager
from .demo_actors import Cast
from .demo_report import report
from .demo_screen import DemoScreen
from .demo_story import Story, play_rescue
from .demo_workers import HANDLER, WorkerOptions, WorkerProcess, WorkerSpec, fleet, stop_all
from .render import make_console

LEASE_SECONDS = 2.0  # each started job's lease: renewed every third of it while its handler runs
STUCK_INTERVAL = 0.5  # the stuck detector's scan, which times out the jobs whose lease ran out
REGISTER_WITHIN = 60.0  # seconds for the workers to connect and register themselves
WORKERS = [WorkerSpec("worker-1", 2), WorkerSpec("worker-2", 2), WorkerSpec("worker-3", 2),
           WorkerSpec("worker-4", 1, freeze_on=2)]  # worker-4 freezes on its second job


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    parser = sub.add_parser("demo", help="watch the whole system work for about half a minute (throwaway Postgres)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", metavar="URL",
                        help="use this (empty or migrated) database instead of a throwaway embedded one")
    parser.add_argument("--pace", type=float, default=1.0, help=argparse.SUPPRESS)  # <1 runs faster (tests)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Run the scenario; exit 0 when everything verifies. SIGTERM ends it as Ctrl-C does: workers stopped."""
    if args.log_level is None:
        configure_logging("ERROR")
    console = make_console()
    where = "the database at --database-url" if args.database_url else "a throwaway embedded PostgreSQL 16"
    print(f"vjm demo: starting {where} and migrating ...", flush=True)
    if args.database_url:
        await probe_database(args.database_url)
    settings = Settings.from_env().model_copy(update={"database_url": args.database_url})  # never VJM_DATABASE_URL
    terminated = asyncio.Event()
    with _cancelled_by_sigterm(terminated):
        try:
            return await _run_on(settings, args, console)
        except asyncio.CancelledError:
            if not terminated.is_set():
                raise
    print("terminated", file=sys.stderr)
    return 128 + signal.SIGTERM


async def _run_on(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    """The scenario and its report, on the database `settings` provide (embedded and throwaway, or given)."""
    async with provide_database(settings, temporary=args.database_url is None) as url:
        screen = DemoScreen(console, database="embedded PostgreSQL (throwaway)" if not args.database_url
                            else "PostgreSQL at --database-url")
        # connect() as every user of vjm: the projector and the stuck detector (which also times out
        # the jobs whose lease ran out) run in this process; the workers in theirs.
        demo = Settings(database_url=url, stuck_interval_seconds=STUCK_INTERVAL)
        async with connect(settings=demo) as manager:
            cast = Cast(manager, screen, pace=max(0.05, args.pace))
            story = Story(cast, screen)
            async with _change_feed(manager, cast, story):
                await _play(cast, story, WorkerOptions(url, LEASE_SECONDS, cast.pace))
            return await report(cast, story, console)


@contextlib.contextmanager
def _cancelled_by_sigterm(terminated: asyncio.Event):
    """SIGTERM cancels the demo as Ctrl-C does, so that its workers and its database are stopped on the way out."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None

    def cancel() -> None:
        terminated.set()
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@contextlib.asynccontextmanager
async def _change_feed(manager: VideoJobManager, cast: Cast, story: Story):
    """Reads the change feed while the demo runs: counted on the screen, and told to the users and the story."""
    feed = manager.subscriptions.subscribe(after=0, poll_interval=0.5)

    async def follow() -> None:
        async for change in feed:
            cast.screen.changes += 1
            cast.on_change(change.job_id, change.status)
            story.on_change(change.job_id, change.status)

    reader = asyncio.create_task(follow())
    try:
        yield
    finally:
        await feed.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _play(cast: Cast, story: Story, options: WorkerOptions) -> None:
    """Users upload, workers work; the screen follows until every job has settled; then the workers stop."""
    screen, manager = cast.screen, cast.manager
    await cast.create_teams()
    await cast.upload_first_wave()
    screen.note(f"{len(WORKERS)} `vjm worker {HANDLER}` processes start (videojobs.Worker; lease "
                f"{options.lease_seconds:g}s, renewed every {options.lease_seconds / 3:.2f}s)")
    with _screen(screen) as live:
        async with fleet(WORKERS, options, story.on_line) as workers:
            await _registered(manager, screen, workers)
            tasks = [asyncio.create_task(cast.upload_the_rest(), name="the uploads"),
                     asyncio.create_task(cast.cancel_mid_encode(), name="the cancel mid-encode"),
                     asyncio.create_task(play_rescue(story, manager), name="the hung worker")]
            try:
                await _follow(cast, tasks, workers, live)
            finally:  # interrupted or failed: the stories end here too
                for task in [*tasks, *cast.background]:
                    task.cancel()
            codes = await stop_all(workers)
            story.exit_codes = {worker.spec.name: code for worker, code in zip(workers, codes, strict=True)}
        screen.note(f"the workers stop (SIGTERM): exit codes {', '.join(map(str, codes))}")
        if not await manager.maintenance.wait_for_projection(timeout=30):  # every event is in the projection
            raise DatabaseUnavailable("the projector did not catch up with the log within 30 s")
        await _refresh(screen, manager)
        if live is not None:
            live.update(screen.render())
    screen.note(f"all {cast.created} jobs settled; projector caught up")


async def _registered(manager: VideoJobManager, screen: DemoScreen, workers: list[WorkerProcess]) -> None:
    """Until every worker has registered itself (its first heartbeat), then name them from the registry."""
    deadline = time.monotonic() + REGISTER_WITHIN
    while True:
        await _refresh(screen, manager)
        if {w.worker_id for w in screen.registry if w.state == "running"} == {spec.name for spec in WORKERS}:
            break
        _still_running(workers)
        if time.monotonic() > deadline:
            raise VJMError(f"the workers did not register within {REGISTER_WITHIN:g} s")
        await asyncio.sleep(0.1)  # poll: a worker registers once it has connected
    listed = ", ".join(f"{w.worker_id} (pid {w.pid}, {w.concurrency} slot{'s' * (w.concurrency > 1)})"
                       for w in screen.registry)
    screen.note(f"the registry (manager.workers) lists {len(screen.registry)} running workers: {listed}")


@contextlib.contextmanager
def _screen(screen: DemoScreen):
    if not screen.live:
        yield None
        return
    with Live(screen.render(), console=screen.console, refresh_per_second=8, transient=False) as live:
        yield live


async def _refresh(screen: DemoScreen, manager: VideoJobManager) -> None:
    """What the screen shows from the database: counters, the registry, the jobs being processed."""
    screen.stats = await manager.get_job_stats()
    screen.registry = [w for w in await manager.workers.list() if w.worker_id in {s.name for s in WORKERS}]
    screen.processing = (await manager.list_jobs(limit=50, filters={"status": "processing"})).items


async def _follow(cast: Cast, tasks: list[asyncio.Task], workers: list[WorkerProcess], live: Live | None) -> None:
    """Refresh the screen until the scenario's tasks are done and every job settled (plain: a line every 5 s)."""
    screen, last_line = cast.screen, 0.0
    pending = set(tasks)
    while pending or not cast.finished():
        done, pending = await asyncio.wait(pending, timeout=0.25) if pending else (set(), set())
        for task in done:
            _outcome_of(task)
        if not pending:
            await asyncio.sleep(0.25)
        _still_running(workers)
        await _refresh(screen, cast.manager)
        if live is not None:
            live.update(screen.render())
        elif screen.elapsed() - last_line >= 5:
            last_line = screen.elapsed()
            print(f"[{last_line:5.1f}s] {screen.status_line()}", flush=True)


def _outcome_of(task: asyncio.Task) -> None:
    """A story that failed ends the demo with its error; one that waited in vain, with a plain message."""
    try:
        task.result()
    except TimeoutError as exc:
        raise VJMError(f"the demo stalled: {task.get_name()} did not happen in time ({exc or 'no detail'})") from exc


def _still_running(workers: list[WorkerProcess]) -> None:
    """A worker that exited before the end ends the demo, with what it last wrote on stderr."""
    for worker in workers:
        if worker.process.returncode is not None:
            raise VJMError(f"{worker.spec.name} exited {worker.process.returncode}: " + "\n".join(worker.stderr_tail))
