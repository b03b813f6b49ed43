"""W8 HTTP create: `POST /api/v1/process` at 16 clients, driven by `hey`, against `vjm up` and a ceiling app.

Both servers run as subprocesses on free loopback ports for the whole run, on the workload's
database: `vjm up` (one process, with its in-process projector and stuck detector, as shipped)
and bench/http_ceiling.py under uvicorn (a minimal FastAPI + asyncpg + PyJWT + pydantic app
doing the same validated insert into a plain table). Every request carries the same end user's
HS256 token and the same body. After a warm-up of each, the rounds alternate which server goes
first; each round is `hey -c 16 -z <seconds>s`. Per server: the medians over rounds of req/s,
p50 and p99 (hey's latency distribution), and the server process's CPU per request. Targets
(issue 20, item 4): vjm >= 0.8x the ceiling's rate and vjm's p99 <= 1.5x the ceiling's p99.
Needs the `hey` binary (Debian package `hey`); without it the workload is skipped, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from videojobs.http.auth import mint_token

from .common import fresh_database, run_standalone

SECRET = "bench-hey-secret-0123456789-0123456789"
USER = "bench-hey-user"
JOB = {"original_filename": "clip.mp4", "original_filesize": 10_485_760, "clip_count": 5,
       "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"}
CLIENTS = 16
TARGET_RATE_RATIO, TARGET_P99_RATIO = 0.8, 1.5
TREE = Path(__file__).resolve().parents[1]
VJM_UP = "import sys; from videojobs.cli import main; sys.exit(main(sys.argv[1:]))"


def ensure_hey(install: bool = True) -> tuple[str | None, str | None]:
    """The path of `hey`, installing the Debian package when it is missing and `install`; else (None, why)."""
    found = shutil.which("hey")
    if found or not install:
        return found, None if found else "hey is not installed (apt-get install -y hey)"
    apt = ["apt-get"] if os.geteuid() == 0 else (["sudo", "-n", "apt-get"] if shutil.which("sudo") else None)
    if apt is None or not shutil.which("apt-get"):
        return None, "hey is not installed and cannot be: no apt-get, or not root and no sudo"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in ([], ["update"]):  # the package lists may be empty: update once, then try again
        if step:
            subprocess.run(apt + step, env=env, capture_output=True, timeout=600)
        done = subprocess.run(apt + ["install", "-y", "hey"], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode == 0 and shutil.which("hey"):
            return shutil.which("hey"), None
    return None, f"hey is not installed and `apt-get install -y hey` failed: {(done.stderr or done.stdout)[-300:]}"


def parse_hey(text: str) -> dict:
    """hey's summary as figures: req/s, latency percentiles in ms, responses by status, transport errors."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"Total:\s+([\d.]+) secs", text)
    head, _, errors = text.partition("Error distribution:")
    percentiles = {int(p): float(s) * 1000 for p, s in re.findall(r"^\s*(\d+)%+ in ([\d.]+) secs", head, re.M)}
    slowest = re.search(r"Slowest:\s+([\d.]+) secs", head)
    if slowest:  # hey prints a percentile only once it has 100/(100-p) answers: below that it is the slowest one
        for p in (50, 90, 99):
            percentiles.setdefault(p, float(slowest.group(1)) * 1000)
    statuses = {code: int(n) for code, n in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", head, re.M)}
    return {"requests_per_s": float(rate.group(1)) if rate else 0.0,
            "total_s": float(total.group(1)) if total else None,
            "p50_ms": percentiles.get(50), "p90_ms": percentiles.get(90), "p99_ms": percentiles.get(99),
            "statuses": statuses, "responses": sum(statuses.values()),
            "errors": sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\s", errors, re.M))}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def served(argv: list[str], env: dict[str, str], port: int, within: float = 120,
                 cwd: Path = TREE) -> AsyncIterator[int]:
    """A server subprocess, once it answers HTTP on `port`; yields its pid; SIGTERM (then SIGKILL) after."""
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, stdout=log, stderr=log)
        try:
            await _wait_answering(port, process, within, log)
            yield process.pid
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_answering(port: int, process: asyncio.subprocess.Process, within: float, log) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while True:  # poll: the server has no ready signal of its own
            try:
                await client.get(f"http://127.0.0.1:{port}/")
                return
            except httpx.TransportError:
                pass
            if process.returncode is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"server did not start ({process.returncode}): {log.read()[-3000:]!r}")
            await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Server:
    """A server under test: its port, its process, and its database (whose backends' CPU is counted too)."""

    port: int
    pid: int
    database: str | None = None


async def database_cpu(probe: asyncpg.Connection | None, database: str | None) -> dict[int, float]:
    """CPU seconds so far of each backend connected to `database` (a local server only; else nothing)."""
    if probe is None or database is None:
        return {}
    found = {}
    for row in await probe.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database):
        with contextlib.suppress(OSError):  # gone meanwhile, or the server is not on this machine
            found[row["pid"]] = cpu_seconds(row["pid"])
    return found


async def hey_round(hey: str, server: Server, seconds: float, clients: int = CLIENTS,
                    probe: asyncpg.Connection | None = None) -> dict:
    """One `hey -c clients -z seconds` run of creates against `server`: its figures, and the CPU per request of
    the server process and of its database's backends (those that ran throughout or started meanwhile)."""
    argv = [hey, "-c", str(clients), "-z", f"{seconds:g}s", "-t", "30", "-m", "POST", "-T", "application/json",
            "-H", f"Authorization: Bearer {mint_token(SECRET, sub=USER, ttl_seconds=3600)}",
            "-d", json.dumps(JOB), f"http://127.0.0.1:{server.port}/api/v1/process"]
    cpu, db_cpu = cpu_seconds(server.pid), await database_cpu(probe, server.database)
    process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    figures = parse_hey(out.decode())
    per_request = 1000 / max(1, figures["responses"])
    figures["server_cpu_ms_per_request"] = round((cpu_seconds(server.pid) - cpu) * per_request, 3)
    if probe is not None and server.database is not None:
        after = await database_cpu(probe, server.database)
        figures["database_cpu_ms_per_request"] = round(
            sum(t - db_cpu.get(pid, 0.0) for pid, t in after.items()) * per_request, 3)
    if process.returncode or figures["errors"] or set(figures["statuses"]) != {"201"}:
        raise RuntimeError(f"hey against port {server.port}: not every request was created: "
                           f"{out.decode()[-1500:]}{err.decode()[-500:]}")
    return figures


def _median(rounds: list[dict]) -> dict:
    keys = [k for k in ("requests_per_s", "p50_ms", "p90_ms", "p99_ms", "server_cpu_ms_per_request",
                        "database_cpu_ms_per_request") if all(k in r for r in rounds)]
    return {k: round(statistics.median(r[k] for r in rounds), 3) for k in keys} | {
        "responses": sum(r["responses"] for r in rounds), "rounds": rounds}


async def measure(hey: str, servers: dict[str, Server], rounds: int, seconds: float, warm_up: float,
                  probe: asyncpg.Connection | None = None) -> dict[str, dict]:
    """A warm-up of each server, then `rounds` interleaved rounds (the first alternates); medians per server."""
    for server in servers.values():
        await hey_round(hey, server, warm_up)
    samples: dict[str, list[dict]] = {name: [] for name in servers}
    names = list(servers)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            samples[name].append(await hey_round(hey, servers[name], seconds, probe=probe))
    return {name: _median(s) for name, s in samples.items()}


def commands(vjm_url: str, ceiling_url: str) -> dict[str, tuple[list[str], dict[str, str], int]]:
    """How each server is started: argv, environment, port."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VJM_", "CEILING_"))}
    vjm_port, ceiling_port = free_port(), free_port()
    return {
        "vjm": ([sys.executable, "-c", VJM_UP, "up", "--host", "127.0.0.1", "--port", str(vjm_port),
                 "--database-url", vjm_url], base | {"VJM_JWT_SECRET": SECRET}, vjm_port),
        "ceiling": ([sys.executable, "-m", "uvicorn", "bench.http_ceiling:app", "--host", "127.0.0.1", "--port",
                     str(ceiling_port), "--log-level", "warning", "--no-access-log"],
                    base | {"CEILING_DATABASE_URL": ceiling_url, "CEILING_JWT_SECRET": SECRET}, ceiling_port)}


async def run(url: str, smoke: bool) -> dict:
    """vjm up against the ceiling app at 16 clients, each on a database of its own; skipped without hey."""
    result: dict = {"benchmark": "http_hey", "workload": f"POST /api/v1/process as one end user, {CLIENTS} clients",
                    "smoke": smoke}
    hey, why = ensure_hey(install=False)
    if hey is None:
        print(f"  http_hey skipped: {why}", flush=True)
        return result | {"skipped": why}
    rounds, seconds, warm_up = (2, 3.0, 1.0) if smoke else (5, 10.0, 3.0)
    load = os.getloadavg()
    async with contextlib.AsyncExitStack() as stack:
        ceiling_url = await stack.enter_async_context(fresh_database(url, migrated=False))
        probe = await asyncpg.connect(url)
        stack.push_async_callback(probe.close)
        servers = {}
        for name, (argv, env, port) in commands(url, ceiling_url).items():
            database = database_of(url if name == "vjm" else ceiling_url)
            servers[name] = Server(port, await stack.enter_async_context(served(argv, env, port)), database)
        figures = await measure(hey, servers, rounds, seconds, warm_up, probe)
    return result | _verdict(figures["vjm"], figures["ceiling"]) | {
        "clients": CLIENTS, "rounds": rounds, "seconds_per_round": seconds,
        "load_average_before": [round(x, 2) for x in load], "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def _verdict(vjm: dict, ceiling: dict) -> dict:
    rate_ratio = round(vjm["requests_per_s"] / ceiling["requests_per_s"], 3)
    p99_ratio = round(vjm["p99_ms"] / ceiling["p99_ms"], 3)
    return {"vjm": vjm, "ceiling": ceiling, "rate_ratio": rate_ratio, "p99_ratio": p99_ratio,
            "target_rate_ratio": TARGET_RATE_RATIO, "target_p99_ratio": TARGET_P99_RATIO,
            "met": rate_ratio >= TARGET_RATE_RATIO and p99_ratio <= TARGET_P99_RATIO}


def database_of(url: str) -> str:
    """The database name of a PostgreSQL URL."""
    return urlsplit(url).path.lstrip("/")


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
