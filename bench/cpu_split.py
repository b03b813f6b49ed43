"""W1's CPU per transition, split: the client (this Python process) and the server (the pool's backends).

For each W1 variant (the raw INSERT and INSERT+NOTIFY ceilings, vjm one append per statement, vjm with
write combining) at each connection count: transitions/s, the client's CPU per transition
(`time.process_time`), the server's (user + system time of the pool's backends, from /proc: the server
must run on this machine) and the append latency p50/p99. The variants take turns, `--runs` rounds,
medians. By default on the fast-commit server (an embedded server on a tmpfs: commits cost no disk
flush, so what is left is CPU); `--url` measures another server (a superuser URL).

`python -m bench.cpu_split [--connections 8 32] [--ops 4000] [--runs 3] [--only VARIANT ...] [--url URL]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from store import EventStore, create_pool
from store.write_combiner import WriteCombiner

from .common import fast_commit_server, fresh_database, percentile, server_facts
from .write_path import RAW_INSERT, RAW_INSERT_NOTIFY, RAW_SCHEMA, _raw_writer, _split, _vjm_writer

TICK = os.sysconf("SC_CLK_TCK")
APPLICATION = "vjm-cpu-split"


def backend_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes so far (/proc/<pid>/stat; one that has exited is left
    out)."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of the line)
    return seconds


async def _backends(pool: asyncpg.Pool) -> list[int]:
    return [r[0] for r in await pool.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                                           APPLICATION)]


Writers = Callable[[list[float]], list[Awaitable[None]]]


async def _one(pool: asyncpg.Pool, total: int, writers: Writers) -> dict[str, float]:
    pids = await _backends(pool)
    latencies: list[float] = []
    before, client, started = backend_seconds(pids), time.process_time(), time.perf_counter()
    await asyncio.gather(*writers(latencies))
    elapsed = time.perf_counter() - started
    client = time.process_time() - client
    server = sum(seconds - before[pid] for pid, seconds in backend_seconds(pids).items() if pid in before)
    return {"per_s": total / elapsed, "client_us": client / total * 1e6, "server_us": server / total * 1e6,
            "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}


async def measure(url: str, connections: int, ops: int, runs: int,
                  only: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Per variant, the medians of `runs` interleaved runs (after a warm-up of each)."""
    pool = await create_pool(url, min_size=connections, max_size=connections,
                             server_settings={"application_name": APPLICATION})
    shares = _split(ops, connections)
    total = sum(shares)
    store = EventStore(pool)
    variants: dict[str, Callable[[], Writers]] = {
        "insert": lambda: lambda lat: [_raw_writer(pool, n, RAW_INSERT, lat) for n in shares],
        "insert_notify": lambda: lambda lat: [_raw_writer(pool, n, RAW_INSERT_NOTIFY, lat) for n in shares],
        "vjm": lambda: lambda lat: [_vjm_writer(store, n, lat) for n in shares],
        "vjm_combined": lambda: _combined_writers(pool, shares),
    }
    variants = {name: make for name, make in variants.items() if not only or name in only}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    try:
        for make in variants.values():  # warm-up
            await _one(pool, total, make())
        for _ in range(runs):
            for name, make in variants.items():
                samples[name].append(await _one(pool, total, make()))
    finally:
        await pool.close()
    return {name: {key: round(statistics.median(s[key] for s in runs_of), 3) for key in runs_of[0]}
            for name, runs_of in samples.items()}


def _combined_writers(pool: asyncpg.Pool, shares: list[int]) -> Writers:
    combiner = WriteCombiner(pool, max_rounds=int(os.environ.get("VJM_BENCH_MAX_ROUNDS", "2")))
    return lambda lat: [_vjm_writer(combiner, n, lat) for n in shares]


FUNCTION_TIMES = """
SELECT schemaname || '.' || funcname AS function, calls, round(total_time::numeric, 1) AS total_ms,
       round(self_time::numeric, 1) AS self_ms
  FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 15
"""


async def run(admin_url: str, connections: list[int], ops: int, runs: int, only: list[str] | None,
              track_functions: bool = False, facts: bool = True) -> dict:
    async with fresh_database(admin_url) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(RAW_SCHEMA)
            if track_functions:  # the plpgsql functions' own time (it costs time too: a diagnostic run)
                name = await conn.fetchval("SELECT current_database()")
                await conn.execute(f"ALTER DATABASE \"{name}\" SET track_functions = 'all'")
            rows: dict = {c: await measure(url, c, ops, runs, only) for c in connections}
            if track_functions:
                await conn.execute("SELECT pg_stat_force_next_flush()")
                rows["functions"] = [dict(r) for r in await conn.fetch(FUNCTION_TIMES)]
        finally:
            await conn.close()
    return {"rows": rows, "server": await server_facts(admin_url) if facts else None, "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="*", default=[8, 32])
    parser.add_argument("--ops", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=["insert", "insert_notify", "vjm", "vjm_combined"])
    parser.add_argument("--no-facts", action="store_true", help="skip the server facts (pg_test_fsync)")
    parser.add_argument("--track-functions", action="store_true", help="report pg_stat_user_functions too")
    parser.add_argument("--url", help="a superuser URL of a server on this machine (default: the fast-commit one)")
    args = parser.parse_args()
    options = (args.connections, args.ops, args.runs, args.only, args.track_functions, not args.no_facts)
    if args.url:
        result = asyncio.run(run(args.url, *options))
    else:
        with fast_commit_server() as admin_url:
            result = asyncio.run(run(admin_url, *options))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
