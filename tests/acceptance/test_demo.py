"""`vjm demo` as a user runs it: real `vjm worker` processes, the frozen worker, the cancel mid-encode.

The first test runs it exactly as `make demo` does (a throwaway embedded PostgreSQL) and reads
its output. The second runs it on this test's database and then reads the event log itself,
so that what the demo says it did is checked against what it stored. The last ones interrupt
it and check that no worker process outlives it.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import pytest

from tests.support.cli import VJM, avjm, clean_env, finish, first_line_with, spawn, vjm

REGISTRY_LINE = re.compile(r"the registry \(manager\.workers\) lists 4 running workers: (.*)$")


def worker_pids(lines: list[str]) -> dict[str, int]:
    """worker id -> pid, from the line where the demo names the workers the registry lists."""
    [listed] = [m.group(1) for line in lines if (m := REGISTRY_LINE.search(line))]
    return {name: int(pid) for name, pid in re.findall(r"(worker-\d) \(pid (\d+),", listed)}


def running_worker_processes(pids: dict[str, int]) -> list[str]:
    """The workers whose process still exists and still runs the demo's handler."""
    alive = []
    for name, pid in pids.items():
        cmdline = Path(f"/proc/{pid}/cmdline")
        try:
            if b"demo_handlers" in cmdline.read_bytes():
                alive.append(f"{name} (pid {pid})")
        except FileNotFoundError:
            pass
    return alive


def line_with(lines: list[str], *parts: str) -> str:
    found = [line for line in lines if all(part in line for part in parts)]
    assert found, f"no line with {parts}"
    return found[0]


def test_make_demo_on_a_throwaway_embedded_postgres_tells_the_whole_story() -> None:
    started = time.monotonic()
    result = vjm("demo", timeout=150)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-3000:])
    assert elapsed < 60, f"vjm demo took {elapsed:.0f}s"
    lines = result.stdout.splitlines()
    assert "throwaway embedded PostgreSQL" in lines[0]
    pids = worker_pids(lines)
    assert sorted(pids) == ["worker-1", "worker-2", "worker-3", "worker-4"]
    frozen = line_with(lines, "worker-4 (pid", "frozen with SIGSTOP mid-job")
    job, attempt = re.search(r"mid-job on (…[0-9a-f]{8}) \(attempt (\d+)\)", frozen).groups()
    order = [lines.index(line_with(lines, text, job)) for text in
             ("frozen with SIGSTOP", f"time_out processing -> queued on job {job} attempt {attempt}",
              f"as attempt {int(attempt) + 1}", "worker-4 thawed (SIGCONT)")]
    assert order == sorted(order)
    assert "system:stuck_detector" in lines[order[1]]
    refused = line_with(lines, f"refused late complete from worker-4 (attempt {attempt}):")
    assert lines.index(refused) > order[-1]
    cancelled = line_with(lines, "cancel reached the running handler")
    assert float(re.search(r"\(asyncio\.CancelledError\) ([0-9.]+)s later", cancelled).group(1)) < 1.0
    assert line_with(lines, "every job read back").startswith(
        "every job read back: 49 completed, 1 cancelled, 0 failed, 0 unfinished; 49 complete events for 49 jobs")
    assert line_with(lines, "the workers stop (SIGTERM)").endswith("exit codes 0, 0, 0, 0")
    assert lines[-2].startswith("audit chain verified: ok") and "0 broken links" in lines[-2]
    assert lines[-1].startswith("projection verified") and lines[-1].endswith("verification failures: 0")
    assert running_worker_processes(pids) == []
    assert "Traceback" not in result.stderr


async def events_by_job(database_url: str) -> dict[str, list[asyncpg.Record]]:
    """Every stored event, read straight from the log, by job, in order."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT job_id, version, type, attempt, actor, data FROM vjm.job_events "
                                      "ORDER BY job_id, version")
    finally:
        await connection.close()
    jobs: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        jobs[str(row["job_id"])].append(row)
    return jobs


async def test_what_the_demo_says_it_did_is_what_its_database_holds(database_url: str, manager) -> None:
    result = await avjm("demo", "--database-url", database_url, "--pace", "0.6")
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-3000:])
    lines = result.stdout.splitlines()
    jobs = await events_by_job(database_url)
    assert len(jobs) == 50
    assert_the_frozen_workers_job_was_rescued(lines, jobs)
    cancelled = the_job_cancelled_mid_encode(lines, jobs)
    for job_id, events in jobs.items():
        if job_id != cancelled:
            assert_completed_once_with_its_clips(job_id, events)
    # The registry saw the four workers, and saw each of them stop.
    registry = {w.worker_id: w.state for w in await manager.workers.list()}
    assert registry == {f"worker-{n}": "stopped" for n in range(1, 5)}


def assert_the_frozen_workers_job_was_rescued(lines: list[str], jobs: dict[str, list]) -> None:
    """Timed out on its lease by the stuck detector, re-run and completed once by another worker; the frozen
    attempt never completed (the thawed worker's complete was refused)."""
    frozen = line_with(lines, "worker-4 (pid", "frozen with SIGSTOP mid-job")
    short, attempt = re.search(r"mid-job on …([0-9a-f]{8}) \(attempt (\d+)\)", frozen).groups()
    [rescued] = [job_id for job_id in jobs if job_id.endswith(short)]
    events, frozen_attempt = jobs[rescued], int(attempt)
    assert [(e["type"], e["actor"]) for e in events if e["attempt"] == frozen_attempt
            and e["type"] in ("start", "time_out", "complete")] == [
        ("start", "worker-4"), ("time_out", "system:stuck_detector")]
    [time_out] = [e for e in events if e["type"] == "time_out"]
    assert json.loads(time_out["data"])["lease_seconds"] == 2.0  # the lease ran out: nobody renewed it
    assert events[-1]["type"] == "complete" and events[-1]["attempt"] == frozen_attempt + 1
    assert events[-1]["actor"] != "worker-4" and [e["type"] for e in events].count("complete") == 1
    assert line_with(lines, f"refused late complete from worker-4 (attempt {attempt}):")


def the_job_cancelled_mid_encode(lines: list[str], jobs: dict[str, list]) -> str:
    """Carol's job: cancelled while processing, nothing stored after the cancel, its handler seen stopping
    within a second."""
    cancel_line = line_with(lines, "cancel reached the running handler")
    [cancelled] = re.findall(r"carol cancelled job ([0-9a-f-]{36}) mid-encode", cancel_line)
    types = [e["type"] for e in jobs[cancelled]]
    assert types[-1] == "cancel" and "progress" in types and "complete" not in types
    assert jobs[cancelled][-1]["actor"] == "carol"
    assert float(re.search(r"([0-9.]+)s later", cancel_line).group(1)) < 1.0
    return cancelled


def assert_completed_once_with_its_clips(job_id: str, events: list) -> None:
    """One complete event, the last, with one path per clip and the runtime's processing time, after the
    handler reported its probe, encode and package phases."""
    assert [e["type"] for e in events].count("complete") == 1 and events[-1]["type"] == "complete", job_id
    clips, done = json.loads(events[0]["data"])["clip_count"], json.loads(events[-1]["data"])
    assert done["output_paths"] == [f"/processed/{job_id}/clip{n}.mp4" for n in range(1, clips + 1)]
    assert done["processing_time"] > 0
    phases = [json.loads(e["data"]).get("phase") for e in events if e["type"] == "progress"]
    assert {"probe", "encode", "package"} <= set(phases), job_id


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_an_interrupted_demo_stops_every_worker_and_leaves_no_job_running(
        database_url: str, manager, sig: signal.Signals) -> None:
    demo = spawn("demo", "--database-url", database_url)
    registered = await first_line_with(demo, "the registry (manager.workers) lists 4 running workers")
    pids = worker_pids([registered.rstrip("\n")])
    await first_line_with(demo, "uploads")  # the uploads trickle in while the workers run the first wave
    demo.send_signal(sig)
    code, _, stderr = await finish(demo, terminate=False)
    assert code == (130 if sig == signal.SIGINT else 128 + signal.SIGTERM), stderr[-3000:]
    assert "Traceback" not in stderr
    assert running_worker_processes(pids) == []
    heads = {job_id: events[-1]["type"] for job_id, events in (await events_by_job(database_url)).items()}
    assert heads and not {job_id: head for job_id, head in heads.items() if head in ("start", "progress")}
    registry = {w.worker_id: w.state for w in await manager.workers.list()}
    assert registry == {f"worker-{n}": "stopped" for n in range(1, 5)}


def test_on_a_terminal_the_demo_shows_its_live_screen(database_url: str) -> None:
    """`make demo` in a terminal: the rich live screen (counters, the registry, the jobs), then the report."""
    main, terminal = pty.openpty()
    env = clean_env(COLUMNS="160", LINES="60")
    demo = subprocess.Popen([VJM, "demo", "--database-url", database_url, "--pace", "0.5"], stdin=subprocess.DEVNULL,
                            stdout=terminal, stderr=subprocess.PIPE, env=env)
    os.close(terminal)
    screen, deadline = bytearray(), time.monotonic() + 120
    try:
        while chunk := read_terminal(main, deadline):
            screen += chunk
        assert demo.wait(timeout=10) == 0, demo.stderr.read().decode()[-3000:] if demo.stderr else ""
    finally:
        os.close(main)
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)  # it stops its workers on the way out
            demo.wait(timeout=30)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.decode(errors="replace"))
    for title in ("jobs by status", "workers (the registry: manager.workers)", "jobs being processed (vjm.jobs)",
                  "what is happening", "FROZEN", "refused late complete from worker-4", "verification failures: 0"):
        assert title in text, title


def read_terminal(fd: int, deadline: float) -> bytes:
    """The next bytes the program wrote to its terminal; b"" once it has closed it (TimeoutError at `deadline`)."""
    readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    if not readable:
        raise TimeoutError("the demo still ran at the deadline")
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: every process holding the terminal is gone
        return b""
