"""Shared benchmark plumbing: a server, a fresh database per workload, environment facts, medians."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from store import connect, migrate, provide_postgres, with_database

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def bench_server(prefer_local: bool = True) -> Iterator[str]:
    """Admin URL of the server to measure: VJM_BENCH_DATABASE_URL, the local one, else embedded."""
    if os.environ.get("VJM_BENCH_DATABASE_URL"):
        yield os.environ["VJM_BENCH_DATABASE_URL"]
        return
    if prefer_local and _answers(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    with provide_postgres(env_vars=(), temporary=True, allow_docker=False) as handle:
        yield handle.url


def _answers(url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True
    return asyncio.run(probe())


def name_the_principal(database: str) -> str:
    """The statement that names who the benchmark's trusted writes that name no actor are by: a
    deployment's service names itself the same way (`vjm.principal`; a trusted write with no actor
    and no principal is refused)."""
    return f"ALTER DATABASE \"{database}\" SET vjm.principal = 'bench'"


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, *, migrated: bool = True) -> AsyncIterator[str]:
    """A new database for one workload, dropped afterwards."""
    name = f"vjm_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.execute(name_the_principal(name))
    finally:
        await admin.close()
    url = with_database(admin_url, name)
    if migrated:
        conn = await connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def server_facts(admin_url: str) -> dict:
    """Postgres version and the settings that shape write throughput."""
    conn = await asyncpg.connect(admin_url)
    try:
        version = await conn.fetchval("SELECT version()")
        names = ["fsync", "synchronous_commit", "wal_sync_method", "shared_buffers", "max_connections",
                 "commit_delay", "wal_level", "full_page_writes", "autovacuum"]  # off here (conf.d/90-ci.conf): queue churn
                 # leaves dead entries until a VACUUM
        rows = await conn.fetch("SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)", names)
        data_directory = await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
    finally:
        await conn.close()
    probe_dir = Path(data_directory) if data_directory and os.access(data_directory, os.W_OK) else None
    fsync = pg_test_fsync(probe_dir)
    return {"version": version, "settings": {r["name"]: f"{r['setting']}{r['unit'] or ''}" for r in rows},
            "pg_test_fsync": fsync | {"probed": str(probe_dir) if probe_dir else "a temporary directory"},
            "regime": disk_regime(fsync.get("usecs_per_op"), probe_dir)}


FAST_DISK_USECS = 50.0  # NVMe fdatasync is 20-50 us: below this, commits are cheap and CPU decides


def disk_regime(usecs_per_op: float | None, probed: Path | None = None) -> str:
    """Which regime a run measured: a fast disk (fdatasync < 50 us), a slow one, or a tmpfs (not durable)."""
    if probed is not None and str(probed).startswith("/dev/shm"):
        return "fast-commit (tmpfs data directory: not durable)"
    if usecs_per_op is None:
        return "unknown (pg_test_fsync did not run)"
    return f"{'fast' if usecs_per_op < FAST_DISK_USECS else 'slow'} disk (fdatasync {usecs_per_op:g} us)"


@contextlib.contextmanager
def fast_commit_server() -> Iterator[str]:
    """Admin URL of an embedded server whose data directory is a tmpfs (/dev/shm): commits cost no disk
    flush, so the ratios show what CPU alone allows. Not durable: its figures are labelled and kept apart."""
    with tempfile.TemporaryDirectory(prefix="vjm-fast-commit-", dir="/dev/shm") as data_dir, \
            provide_postgres(env_vars=(), data_dir=Path(data_dir), allow_docker=False) as handle:
        yield handle.url


def pg_test_fsync(directory: Path | None = None) -> dict:
    """fdatasync ops/s of one 8 kB write, from pg_test_fsync (the embedded wheel ships it), in `directory`
    (the server's data directory when this process may write there) or a temporary one."""
    binary = shutil.which("pg_test_fsync")
    if binary is None:
        import pgserver

        candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_test_fsync"
        binary = str(candidate) if candidate.exists() else None
    if binary is None:
        return {"error": "pg_test_fsync not found"}
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        out = subprocess.run([binary, "-s", "1", "-f", str(Path(tmp) / "probe")], capture_output=True, text=True,
                             timeout=60).stdout
    for line in out.splitlines():
        if line.strip().startswith("fdatasync"):
            parts = line.split()
            return {"fdatasync_ops_per_s": float(parts[1]), "usecs_per_op": float(parts[3])}
    return {"raw": out[:400]}


async def interleaved(variants: dict[str, Callable[[], Awaitable[float]]], runs: int,
                      warm_up: bool = True) -> dict[str, dict]:
    """One warm-up of each variant, then `runs` interleaved rounds; medians of the returned figure."""
    for run in variants.values() if warm_up else ():
        await run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, run in variants.items():
            samples[name].append(await run())
    return {name: {"median": statistics.median(v), "samples": v} for name, v in samples.items()}


async def interleaved_figures(variants: dict[str, Callable[[], Awaitable[dict[str, float]]]],
                              runs: int) -> dict[str, dict]:
    """Like `interleaved`, for runs that return several figures (e.g. p50 and p99): per-figure medians."""
    for run in variants.values():
        await run()
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, run in variants.items():
            samples[name].append(await run())
    return {name: {key: statistics.median(s[key] for s in v) for key in v[0]} | {"samples": v}
            for name, v in samples.items()}


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank on the sorted list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def run_standalone(run: Callable[[str, bool], Awaitable[dict]], doc: str | None) -> None:
    """`python -m bench.<workload> [--smoke] [--embedded]`: one workload on a fresh database, JSON on stdout."""
    import argparse

    from store.logs import configure_logging

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--smoke", action="store_true", help="small and quick (CI)")
    parser.add_argument("--embedded", action="store_true", help="use the embedded server, not 127.0.0.1:5432")
    args = parser.parse_args()
    configure_logging("WARNING", json=True)  # logs on stderr; stdout stays one JSON document

    async def _main(admin_url: str) -> dict:
        async with fresh_database(admin_url) as url:
            result = await run(url, args.smoke)
        result["server"] = await server_facts(admin_url)
        return result

    with bench_server(prefer_local=not args.embedded) as admin_url:
        print(json.dumps(asyncio.run(_main(admin_url)), indent=2, default=str))


@contextlib.asynccontextmanager
async def projector_process(url: str) -> AsyncIterator[None]:
    """The projector in a process of its own (as `vjm listen` runs it) while the block runs."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    process = ctx.Process(target=_run_projector, args=(url, ready, stop), daemon=True)
    process.start()
    try:
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("projector process did not start")
        yield
    finally:
        stop.set()
        await asyncio.to_thread(process.join, 30)


def _run_projector(url: str, ready, stop) -> None:
    from listeners import Projector, ProjectorConfig
    from store.logs import configure_logging

    configure_logging("WARNING", json=True)

    async def main() -> None:
        projector = Projector(ProjectorConfig(database_url=url))
        await projector.start()
        ready.set()
        while not stop.is_set():  # noqa: ASYNC110 - a multiprocessing flag, not an asyncio one
            await asyncio.sleep(0.05)  # poll
        await projector.stop()
    asyncio.run(main())


async def wait_projected(conn: asyncpg.Connection, cursor: tuple[int, int] | None = None,
                         within: float = 120) -> None:
    """Until the projector's checkpoint reaches `cursor` (default: the newest event committed now)."""
    if cursor is None:
        row = await conn.fetchrow("SELECT xact_id, position FROM vjm.job_events "
                                  "ORDER BY xact_id DESC, position DESC LIMIT 1")
        cursor = tuple(row) if row else (0, 0)
    async with asyncio.timeout(within):
        while tuple(await conn.fetchrow("SELECT xact_id, position FROM vjm.projection_checkpoints "  # noqa: ASYNC110
                                        "WHERE name = 'main'") or (0, 0)) < cursor:
            await asyncio.sleep(0.01)  # poll


@dataclass
class Pace:
    """A claimer's slots: one every `interval` seconds from `first` (perf_counter time)."""

    first: float
    interval: float

    @classmethod
    def spread(cls, rate: float, claimers: int, index: int, start: float) -> Pace:
        """Claimer `index` of `claimers` sharing `rate` claims per second, its slots between the others'."""
        interval = claimers / rate
        return cls(start + interval * index / claimers, interval)

    async def slot(self, i: int) -> float:
        """Wait for slot i; the time the operation is timed from.

        When the claimer is behind (slot i is past: the operation before it overran), the slot's own
        time, so the operation counts the wait it was held up (no coordinated omission). Otherwise the
        time it wakes at: the event loop's timer wakes up to a millisecond late (epoll's resolution),
        and that lateness is the client's, not the system's."""
        due = self.first + i * self.interval
        now = time.perf_counter()
        if now >= due:
            return due
        await asyncio.sleep(due - now)  # pace: the next slot
        return time.perf_counter()
