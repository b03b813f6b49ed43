"""`vjm up --workers N`: N processes serve one port; this parent migrates, binds the port and supervises.

- The parent settles the settings and the identity secret once (VJM_JWT_SECRET, `--secret-file`, or
  one made up for the run), migrates the schema once (or starts the embedded server) before any
  worker exists, and binds the listening socket. Each worker (videojobs/cli/up_worker.py) inherits
  that socket's file descriptor, so all of them accept on one port and the kernel hands each
  connection to one; the secret and the database URL reach a worker on its stdin, never in argv,
  the environment or a log. The announcement (where it serves, a service token) is printed once,
  by the parent, when every worker serves.
- The first worker starts alone, so a configuration error (a login that may not act as
  vjm_projector, say) is reported once, not N times; the others then start together.
- Every worker runs a projector, and the lease in vjm.projector_leases elects one
  (listeners/projector.py): when the leader's process dies its database backend dies with it, the
  lease is free at once, and a standby (another worker, or the restarted one) takes over within
  its takeover interval. Every worker serves event streams from the database's change feed
  (listeners/feed_hub.py), so every stream sees every change, whichever process it reached.
- Every worker runs a stuck detector too: a reset is appended through the version guard and a
  lease expiry deletes its lease row first (listeners/stuck_detector.py), so N detectors reset each
  stuck job exactly once; the cost is N cheap index scans per interval.
- Each worker's own metrics (request latencies, open streams, pools) go to files in a directory the
  parent makes for the run (PROMETHEUS_MULTIPROC_DIR, prometheus_client's multi-process mode), so a
  scrape of /metrics, whichever worker answers, serves them all (videojobs/http/metrics.py); a dead
  worker's gauges are dropped, its counts kept.
- A worker that dies is reported and restarted, after RESTART_DELAY, doubling (up to
  RESTART_MAX_DELAY) while it keeps dying within RESTART_WINDOW of its start; after
  MAX_QUICK_DEATHS such deaths in a row the parent gives up, stops the others and exits 1. A worker
  that fails while the run starts (before the announcement) ends the run with its exit code.
- SIGTERM or Ctrl-C reaches the parent (the workers run in a process group of their own): it sends
  SIGTERM to every worker, which stops as `vjm up` does (event streams first), waits up to
  STOP_GRACE_SECONDS and kills what is left; exit 0 when every worker stopped cleanly, else 1. If
  the parent is killed outright, its workers' stdin closes and they stop on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

from prometheus_client.multiprocess import mark_process_dead

from ..config import MERGE_METRICS_VARIABLE, METRICS_DIR_VARIABLE, Settings
from ..database import probe_database, provide_database
from .session import shutdown_event
from .up_worker import READY, WorkerSpec

RESTART_DELAY = 0.5        # seconds before a dead worker is started again (doubled per quick death in a row)
RESTART_MAX_DELAY = 10.0
RESTART_WINDOW = 30.0      # a worker that dies sooner than this after its start counts as a quick death
MAX_QUICK_DEATHS = 5       # in a row, in one slot: the parent gives up
STOP_GRACE_SECONDS = 30.0  # after SIGTERM, a worker still running this long is killed
BACKLOG = 2048

Announce = Callable[[str, int], None]


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` (the first address `host` resolves to) and listening."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def describe(code: int) -> str:
    """How a process ended, for a person: 'exit code 1', 'killed by SIGKILL'."""
    if code >= 0:
        return f"exit code {code}"
    with contextlib.suppress(ValueError):
        return f"killed by {signal.Signals(-code).name}"
    return f"killed by signal {-code}"


async def first_of(*waits: Awaitable[object]) -> None:
    """Return when the first of `waits` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class WorkerProcess:
    """One running worker: its slot, its process, and whether it serves yet (its stdout is relayed)."""

    def __init__(self, index: int, process: asyncio.subprocess.Process) -> None:
        self.index, self.process = index, process
        self.started_at = time.monotonic()
        self.ready = asyncio.Event()
        self._relay = asyncio.create_task(self._read_stdout())

    @classmethod
    async def spawn(cls, spec: WorkerSpec, metrics_dir: str) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "videojobs.cli.up_worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, pass_fds=(spec.fd,), start_new_session=True,  # no terminal Ctrl-C
            env={**os.environ, METRICS_DIR_VARIABLE: metrics_dir, MERGE_METRICS_VARIABLE: "1"})
        assert process.stdin is not None
        process.stdin.write(spec.to_line())  # stdin stays open: its end tells the worker the parent is gone
        return cls(spec.index, process)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def __str__(self) -> str:
        return f"worker {self.index} (pid {self.pid})"

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            text = line.decode(errors="replace").rstrip("\n")
            if text == READY:
                self.ready.set()
            else:
                print(text, flush=True)

    async def serving(self) -> bool:
        """True once the worker serves; False when it exits first."""
        await first_of(self.ready.wait(), self.process.wait())
        return self.ready.is_set()

    async def wait(self) -> int:
        """Its exit code, once it has exited and all it printed has been relayed."""
        code = await self.process.wait()
        await asyncio.shield(self._relay)
        return code

    def send(self, sig: signal.Signals) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()


class Supervisor:
    """Starts the workers, restarts the ones that die, stops them all."""

    def __init__(self, spec_of: Callable[[int], WorkerSpec], count: int, stop: asyncio.Event, metrics_dir: str) -> None:
        self.spec_of, self.count, self.stop, self.metrics_dir = spec_of, count, stop, metrics_dir
        self.workers: dict[int, WorkerProcess] = {}
        self.gave_up = False
        self._keepers: list[asyncio.Task[None]] = []

    async def start(self) -> int | None:
        """The first worker, then the others; None once all serve, else the run's exit code (0: stopped)."""
        for batch in ([1], range(2, self.count + 1)):
            for worker in await asyncio.gather(*(self._start(index) for index in batch)):
                if self.stop.is_set():
                    return 0
                if not worker.ready.is_set():
                    code = await worker.wait()
                    print(f"vjm up: {worker} exited while starting ({describe(code)})", flush=True)
                    return code or 1
        self._keepers = [asyncio.create_task(self._keep(index)) for index in self.workers]
        return None

    async def _start(self, index: int) -> WorkerProcess:
        worker = self.workers[index] = await WorkerProcess.spawn(self.spec_of(index), self.metrics_dir)
        await first_of(worker.serving(), self.stop.wait())
        return worker

    async def _keep(self, index: int) -> None:
        """Restart slot `index` whenever its worker dies, until stopped or given up."""
        quick = 0
        while True:
            worker = self.workers[index]
            code = await worker.wait()
            mark_process_dead(worker.pid, self.metrics_dir)  # its gauges go; its counts stay in the sums
            if self.stop.is_set():
                return
            quick = quick + 1 if time.monotonic() - worker.started_at < RESTART_WINDOW else 0
            if quick >= MAX_QUICK_DEATHS:
                print(f"vjm up: {worker} exited ({describe(code)}), {quick} times in a row within "
                      f"{RESTART_WINDOW:.0f} s of starting: giving up", flush=True)
                self.gave_up = True
                self.stop.set()
                return
            delay = min(RESTART_MAX_DELAY, RESTART_DELAY * 2 ** max(quick - 1, 0))
            print(f"vjm up: {worker} exited ({describe(code)}); restarting it in {delay:g} s", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
                return
            if (await self._start(index)).ready.is_set():
                print(f"vjm up: {self.workers[index]} restarted", flush=True)

    async def stop_all(self) -> bool:
        """SIGTERM every worker, kill those still running after STOP_GRACE_SECONDS; True when all stopped cleanly."""
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        alive = [worker for worker in self.workers.values() if worker.alive]
        for worker in alive:
            worker.send(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                await asyncio.gather(*(worker.wait() for worker in alive))
        for worker in alive:
            if worker.alive:
                print(f"vjm up: {worker} did not stop within {STOP_GRACE_SECONDS:g} s: killing it", flush=True)
                worker.send(signal.SIGKILL)
        # Dying of the SIGTERM itself is a clean stop too: a worker still starting has no handler yet.
        unclean = [(worker, code) for worker in alive if (code := await worker.wait()) not in (0, -signal.SIGTERM)]
        for worker, code in unclean:
            print(f"vjm up: {worker} did not stop cleanly ({describe(code)})", flush=True)
        for worker in self.workers.values():
            worker.close()
        return not unclean


async def run_workers(args: argparse.Namespace, settings: Settings, announce: Announce) -> int:
    """Migrate, bind, start `args.workers` workers, supervise them until SIGTERM or Ctrl-C; the exit code."""
    stop = shutdown_event()
    if settings.database_url:
        await probe_database(settings.database_url)
    async with provide_database(settings) as url:  # migrated here, once, before any worker starts
        try:
            sock = listening_socket(args.host, args.port)
        except OSError as exc:
            print(f"error: could not serve on {args.host}:{args.port} ({exc.strerror or exc})", flush=True)
            return 1
        assert settings.jwt_secret is not None  # up.py settled it
        secret, level = settings.jwt_secret, getattr(args, "log_level", None)
        with sock, tempfile.TemporaryDirectory(prefix="vjm-metrics-") as metrics_dir:
            def spec_of(index: int) -> WorkerSpec:
                return WorkerSpec(database_url=url, jwt_secret=secret, fd=sock.fileno(), index=index,
                                  stuck_timeout=settings.stuck_timeout_seconds, log_level=level)

            return await supervise(Supervisor(spec_of, args.workers, stop, metrics_dir), sock, announce)


async def supervise(supervisor: Supervisor, sock: socket.socket, announce: Announce) -> int:
    """Start the workers, announce once, wait for the stop, stop them; the exit code."""
    failed = await supervisor.start()
    if failed is None and not supervisor.stop.is_set():
        host, port = sock.getsockname()[:2]
        announce(host, port)
        pids = ", ".join(str(worker.pid) for worker in supervisor.workers.values())
        print(f"vjm up: {supervisor.count} worker processes (pids {pids}) serve that port; "
              "one of them leads the projector", flush=True)
        await supervisor.stop.wait()
    print("vjm up: stopping ...", flush=True)
    clean = await supervisor.stop_all()
    print("vjm up: stopped", flush=True)
    if failed is not None:
        return failed
    return 1 if supervisor.gave_up or not clean else 0
