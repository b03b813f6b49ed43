"""The projector's cost per event (issue 20): catch-up rate, Python CPU and server CPU per event, and W1 with it.

1. A log of `jobs` jobs through the real write path with no projector running
   (bench/rebuild.py's `build_log`: bulk creates, then start -> progress -> complete by 16
   concurrent writers through `EventStore.append`; 4 events per job).
2. The projector's catch-up over that log, in this process (`Projector.run_once`, batch 1000,
   the production default): events/s, this process's CPU per event (`time.process_time`: the
   projector's Python, asyncpg included) and its backend's CPU per event (utime + stime of
   /proc/<pid>/stat for the projector connection's server pid; absent when the server is not
   on this machine). With VJM_BENCH_PROFILE=<path> the catch-up runs under cProfile and the
   stats go to <path>. Then a second log of a fifth as many jobs, projected in batches of 10
   (`project_batch`: the shape of the projector's work under load, polling every 5 ms): CPU per batch.
3. W1 at 8 connections without and with the projector projecting in its own process
   (`bench.write_path.projector_ratio`, rounds alternating): the ratio is the cost to writers
   (target >= 0.85).

`python -m bench.projector_cost [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import cProfile
import os
import time
from pathlib import Path

from listeners import Projector, ProjectorConfig, project_batch
from store.role_connection import connect_with_role

from .common import run_standalone
from .rebuild import build_log
from .write_path import projector_ratio

TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a server backend, when it runs on this machine and /proc shows it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5), after pid and comm


async def catch_up(url: str, batch_size: int = 1000) -> dict:
    """One projector catch-up over the whole log: rate, Python CPU and backend CPU per event."""
    projector = Projector(ProjectorConfig(database_url=url, batch_size=batch_size))
    try:
        await projector.lag()  # connect (and LISTEN) before the clocks start
        server_before = backend_cpu_seconds(projector.backend_pid)
        profile = cProfile.Profile() if os.environ.get("VJM_BENCH_PROFILE") else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        result = await projector.run_once()
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        server_after = backend_cpu_seconds(projector.backend_pid)
    finally:
        await projector.stop()
    if profile is not None:
        profile.dump_stats(os.environ["VJM_BENCH_PROFILE"])
    events = max(result.events, 1)
    server = None if server_before is None or server_after is None else server_after - server_before
    return {"events": result.events, "batches": result.batches, "batch_size": batch_size,
            "seconds": round(wall, 3), "events_per_s": round(result.events / wall, 1),
            "python_cpu_us_per_event": round(cpu / events * 1e6, 2),
            "server_cpu_us_per_event": None if server is None else round(server / events * 1e6, 2),
            "profiled": profile is not None}


async def small_batches(url: str, events: int, size: int = 10) -> dict:
    """`events` events in batches of `size` (project_batch, as the projector works under load, polling
    every few milliseconds): what a batch costs beyond its events."""
    conn = await connect_with_role(url, None)
    try:
        server_before = backend_cpu_seconds(conn.get_server_pid())
        cpu, wall = time.process_time(), time.perf_counter()
        done = batches = 0
        while done < events and (batch := await project_batch(conn, "main", batch_size=size, per_job_limit=10)).events:
            done, batches = done + batch.events, batches + 1
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        server_after = backend_cpu_seconds(conn.get_server_pid())
    finally:
        await conn.close()
    server = None if server_before is None or server_after is None else server_after - server_before
    return {"events": done, "batches": batches, "batch_size": size, "batches_per_s": round(batches / wall, 1),
            "python_cpu_us_per_batch": round(cpu / max(batches, 1) * 1e6, 1),
            "python_cpu_us_per_event": round(cpu / max(done, 1) * 1e6, 2),
            "server_cpu_us_per_batch": None if server is None else round(server / max(batches, 1) * 1e6, 1)}


async def run(url: str, smoke: bool) -> dict:
    """The whole workload on the (fresh, migrated) database at `url`."""
    jobs, ops, runs = (1_000, 400, 2) if smoke else (25_000, 4000, 3)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    events = await build_log(url, jobs)
    build_seconds = time.perf_counter() - started
    caught_up = await catch_up(url)
    small_log = await build_log(url, jobs // 5)  # a second log, projected in small batches
    small = await small_batches(url, small_log)
    writers = await projector_ratio(url, 8, ops, runs)
    return {"benchmark": "projector_cost", "smoke": smoke, "jobs": jobs, "events": events,
            "build_log_events_per_s": round(events / build_seconds, 1), "small_batches": small, "catch_up": caught_up,
            "w1_with_projector": writers, "target_w1_ratio": 0.85,
            "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
