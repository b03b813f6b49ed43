"""Server time per transition: what the database spends on one append, with no client in the way.

A plpgsql procedure walks jobs through create -> start -> progress -> progress -> complete
with `vjm.append_event`, a COMMIT after each call (every append its own transaction, as W1's
autocommit appends are), as the superuser W1 connects as, with `synchronous_commit = off`
(the server's work, not the disk's). It times each call and its COMMIT with clock_timestamp()
and adds them up per trigger; the client also times the whole CALL, and reads the backend's
CPU time from /proc when the server runs on this machine (steadier than wall time when other
work shares the CPUs).

Several trees can be measured in one session: each gets a database migrated with its own code
(`--tree NAME=PATH`, a checkout such as a worktree of an older commit), and the runs alternate
between them (the order rotates each run). Each figure is the best run's mean (min of `--runs`),
in microseconds per event. The JSON records the server's fdatasync time (`server.pg_test_fsync`):
the disk regime, although commits here do not wait for it.

`python -m bench.server_time [--tree NAME=PATH ...] [--cycles 400] [--runs 7] [URL]`
(URL: a superuser URL of the server, default VJM_TEST_DATABASE_URL or the local one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from bench.common import LOCAL_SERVER, fresh_database, server_facts

TRIGGERS = ("create", "start", "progress", "complete")
CREATE_DATA = ('{"original_filename": "clip.mp4", "original_filesize": 10485760, "clip_count": 5, '
               '"quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"}')

# One job per cycle; per trigger, the seconds spent in its calls and their commits. W1's
# payloads and arguments: the actor named, the attempt token on the worker's reports.
PROCEDURE = """
CREATE PROCEDURE pg_temp.bench_cycles(p_cycles integer, INOUT create_s float8, INOUT start_s float8,
                                      INOUT progress_s float8, INOUT complete_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    j uuid;
    a integer;
    t timestamptz;
BEGIN
    create_s := 0; start_s := 0; progress_s := 0; complete_s := 0;
    FOR i IN 1 .. p_cycles LOOP
        j := gen_random_uuid();
        t := clock_timestamp();
        PERFORM vjm.append_event(j, 'create', '%(create)s'::jsonb, 'bench', NULL, NULL, 'bench', NULL);
        COMMIT;
        create_s := create_s + extract(epoch FROM clock_timestamp() - t);
        t := clock_timestamp();
        SELECT e.attempt INTO a FROM vjm.append_event(j, 'start', '{"worker_id": "bench-worker"}'::jsonb, 'bench') e;
        COMMIT;
        start_s := start_s + extract(epoch FROM clock_timestamp() - t);
        FOR p IN 1 .. 2 LOOP
            t := clock_timestamp();
            PERFORM vjm.append_event(j, 'progress', '{"percent": 50.0, "clips_done": 2}'::jsonb, 'bench', NULL, a);
            COMMIT;
            progress_s := progress_s + extract(epoch FROM clock_timestamp() - t);
        END LOOP;
        t := clock_timestamp();
        PERFORM vjm.append_event(j, 'complete', '{"output_paths": ["/out/1.mp4", "/out/2.mp4"], '
                                               '"processing_time": 12.5}'::jsonb, 'bench', NULL, a);
        COMMIT;
        complete_s := complete_s + extract(epoch FROM clock_timestamp() - t);
    END LOOP;
END
$$;
""".replace("%(create)s", CREATE_DATA)

MIGRATE = """
import asyncio, sys
import asyncpg
from store import migrate

async def main(url):
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()

asyncio.run(main(sys.argv[1]))
"""


def migrate_with(tree: Path, url: str) -> None:
    """Build the schema at `url` with the code of the checkout `tree` (its own store.migrate and sql/)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run([sys.executable, "-c", MIGRATE, url], cwd=tree, env=env, check=True,
                   stdout=sys.stderr)  # its log lines; stdout stays one JSON document


async def open_session(url: str) -> asyncpg.Connection:
    """A superuser session (as W1's pool) with the procedure, commits that do not wait for the disk."""
    conn = await asyncpg.connect(url)
    await conn.execute("SET synchronous_commit = off")
    await conn.execute(PROCEDURE)
    return conn


def backend_cpu_ns(pid: int) -> int | None:
    """The CPU time the server process `pid` has used (ns), when the server runs on this machine."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def one_run(conn: asyncpg.Connection, cycles: int) -> dict[str, float]:
    """Microseconds per event, per trigger and over the whole cycle (wall, and the backend's CPU
    time when it can be read: the steadier figure on a busy machine), for one CALL."""
    loop = asyncio.get_running_loop()
    pid = conn.get_server_pid()
    cpu_before, started = backend_cpu_ns(pid), loop.time()
    row = await conn.fetchrow("CALL pg_temp.bench_cycles($1, 0, 0, 0, 0)", cycles)
    wall, cpu_after = loop.time() - started, backend_cpu_ns(pid)
    per_trigger = {"create": cycles, "start": cycles, "progress": 2 * cycles, "complete": cycles}
    figures = {t: row[f"{t}_s"] / per_trigger[t] * 1e6 for t in TRIGGERS}
    figures["event"] = wall / (5 * cycles) * 1e6
    if cpu_before is not None and cpu_after is not None:
        figures["event_cpu"] = (cpu_after - cpu_before) / (5 * cycles) / 1e3
    return figures


def best(samples: list[dict[str, float]]) -> dict[str, float]:
    """Per figure, the minimum over the runs (the run least disturbed by the rest of the machine)."""
    return {key: round(min(s[key] for s in samples), 1) for key in samples[0]}


async def measure(admin_url: str, trees: dict[str, Path], cycles: int, runs: int) -> dict:
    """Every tree's figures, runs interleaved (the order rotates each run), on one database each."""
    async with contextlib.AsyncExitStack() as stack:
        sessions: dict[str, asyncpg.Connection] = {}
        for name, tree in trees.items():
            url = await stack.enter_async_context(fresh_database(admin_url, migrated=False))
            await asyncio.to_thread(migrate_with, tree, url)
            sessions[name] = await open_session(url)
            stack.push_async_callback(sessions[name].close)
            await one_run(sessions[name], max(20, cycles // 4))  # warm-up: plans, caches, relation sizes
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        names = list(trees)
        for run in range(runs):
            for name in names[run % len(names):] + names[:run % len(names)]:
                samples[name].append(await one_run(sessions[name], cycles))
    return {name: {"us_min": best(s), "us_all": s} for name, s in samples.items()}


def parse_trees(specs: list[str]) -> dict[str, Path]:
    """`NAME=PATH` pairs; none given: this checkout, as 'this'."""
    if not specs:
        return {"this": Path(__file__).resolve().parent.parent}
    trees = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        trees[name] = Path(path).resolve()
    return trees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("VJM_TEST_DATABASE_URL", LOCAL_SERVER))
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a checkout to measure")
    parser.add_argument("--cycles", type=int, default=400, help="jobs per run (5 events each)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    async def run() -> dict:
        result = await measure(args.url, parse_trees(args.tree), args.cycles, args.runs)
        return {"benchmark": "server_time", "cycles_per_run": args.cycles, "runs": args.runs,
                "trees": result, "server": await server_facts(args.url)}

    print(json.dumps(asyncio.run(run()), indent=2, default=str))


if __name__ == "__main__":
    main()
