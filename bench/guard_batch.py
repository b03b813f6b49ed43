"""The guard's cost per item of a batch: server CPU per transition for batches of N, with no client in the way.

A plpgsql procedure claims N queued jobs (`vjm.claim_jobs`, limit N), reports progress on each
(`vjm.append_events`, N items) and completes them (`vjm.append_events`, N items), a COMMIT after each
call, as the superuser W1 connects as, with `synchronous_commit = off` (the server's work, not the
disk's). It times each call and its COMMIT with clock_timestamp(); the client reads the backend's CPU
time from /proc (steadier than wall time when other work shares the CPUs).

Several trees can be measured in one session (`--tree NAME=PATH`, a checkout such as an export of an
older commit): each gets a database migrated with its own code, and the runs alternate between them (the
order rotates each run). Each figure is the median of `--runs` runs, in microseconds per item.

`python -m bench.guard_batch [--tree NAME=PATH ...] [--sizes 1 8 32] [--items 1600] [--runs 5] [--url URL]`
(default server: the fast-commit one, an embedded server on a tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
from pathlib import Path

import asyncpg

from bench.common import fast_commit_server, fresh_database, server_facts
from bench.server_time import CREATE_DATA, backend_cpu_ns, migrate_with, parse_trees

# Per call kind, the seconds spent in its calls and their commits.
PROCEDURE = """
CREATE PROCEDURE pg_temp.bench_batches(p_calls integer, p_n integer, INOUT claim_s float8, INOUT progress_s float8,
                                       INOUT complete_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
    atts integer[];
    t timestamptz;
BEGIN
    claim_s := 0; progress_s := 0; complete_s := 0;
    FOR i IN 1 .. p_calls LOOP
        t := clock_timestamp();
        SELECT array_agg(c.job_id ORDER BY c.job_id), array_agg(c.attempt ORDER BY c.job_id) INTO ids, atts
          FROM vjm.claim_jobs('bench-worker', p_n) c;
        COMMIT;
        claim_s := claim_s + extract(epoch FROM clock_timestamp() - t);
        IF coalesce(cardinality(ids), 0) <> p_n THEN
            RAISE EXCEPTION 'claimed % jobs, wanted %', cardinality(ids), p_n;
        END IF;
        t := clock_timestamp();
        PERFORM vjm.append_events(ids, array_fill('progress'::text, ARRAY[p_n]),
                                  array_fill('{"percent": 50.0, "clips_done": 2}'::jsonb, ARRAY[p_n]),
                                  array_fill('bench'::text, ARRAY[p_n]), atts, array_fill(NULL::integer, ARRAY[p_n]));
        COMMIT;
        progress_s := progress_s + extract(epoch FROM clock_timestamp() - t);
        t := clock_timestamp();
        PERFORM vjm.append_events(ids, array_fill('complete'::text, ARRAY[p_n]),
                                  array_fill('{"output_paths": ["/out/1.mp4"], "processing_time": 12.5}'::jsonb,
                                             ARRAY[p_n]),
                                  array_fill('bench'::text, ARRAY[p_n]), atts, array_fill(NULL::integer, ARRAY[p_n]));
        COMMIT;
        complete_s := complete_s + extract(epoch FROM clock_timestamp() - t);
    END LOOP;
END
$$;
"""

# Queued jobs for the runs to claim, made in one statement per 5,000.
FILL = """
SELECT count(*) FROM vjm.append_creates(
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, $1)),
    array_fill('%(create)s'::jsonb, ARRAY[$1]), array_fill('bench'::text, ARRAY[$1]),
    array_fill('bench'::text, ARRAY[$1]), array_fill(NULL::uuid, ARRAY[$1]))
""".replace("%(create)s", CREATE_DATA)


async def open_session(url: str, jobs: int) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await conn.execute("SET synchronous_commit = off")
    for setting in os.environ.get("VJM_BENCH_SESSION_SETTINGS", "").split(";"):  # e.g. plan_cache_mode=...
        if setting.strip():
            name, _, value = setting.partition("=")
            await conn.execute("SELECT set_config($1, $2, false)", name.strip(), value.strip())
    await conn.execute(PROCEDURE)
    for done in range(0, jobs, 5000):
        await conn.fetchval(FILL, min(5000, jobs - done))
    await conn.execute("VACUUM ANALYZE")
    return conn


async def one_run(conn: asyncpg.Connection, n: int, items: int) -> dict[str, float]:
    """Microseconds per item for each call kind, and the backend's CPU per item over the whole CALL."""
    calls = max(1, items // n)
    pid = conn.get_server_pid()
    loop = asyncio.get_running_loop()
    cpu_before, started = backend_cpu_ns(pid), loop.time()
    row = await conn.fetchrow("CALL pg_temp.bench_batches($1, $2, 0, 0, 0)", calls, n)
    wall, cpu_after = loop.time() - started, backend_cpu_ns(pid)
    figures = {k: row[f"{k}_s"] / (calls * n) * 1e6 for k in ("claim", "progress", "complete")}
    figures["item_wall"] = wall / (3 * calls * n) * 1e6
    if cpu_before is not None and cpu_after is not None:
        figures["item_cpu"] = (cpu_after - cpu_before) / (3 * calls * n) / 1e3
    return figures


async def measure(admin_url: str, trees: dict[str, Path], sizes: list[int], items: int, runs: int) -> dict:
    """Every tree's figures per batch size, runs interleaved (the order rotates each run)."""
    jobs = items * (runs + 1) * len(sizes) + 1000
    async with contextlib.AsyncExitStack() as stack:
        sessions: dict[str, asyncpg.Connection] = {}
        for name, tree in trees.items():
            url = await stack.enter_async_context(fresh_database(admin_url, migrated=False))
            await asyncio.to_thread(migrate_with, tree, url)
            sessions[name] = await open_session(url, jobs)
            stack.push_async_callback(sessions[name].close)
            for n in sizes:  # warm-up: plans, caches
                await one_run(sessions[name], n, min(items, 64 * n) // 4)
        names = list(trees)
        samples: dict[int, dict[str, list[dict[str, float]]]] = {n: {name: [] for name in names} for n in sizes}
        for run in range(runs):
            for n in sizes:
                for name in names[run % len(names):] + names[:run % len(names)]:
                    samples[n][name].append(await one_run(sessions[name], n, items))
    return {n: {name: {key: round(statistics.median(s[key] for s in runs_of), 1) for key in runs_of[0]}
                for name, runs_of in per_tree.items()}
            for n, per_tree in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a checkout to measure")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--items", type=int, default=1600, help="items per call kind per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", help="a superuser URL of a server on this machine (default: the fast-commit one)")
    args = parser.parse_args()

    async def run(admin_url: str) -> dict:
        result = await measure(admin_url, parse_trees(args.tree), args.sizes, args.items, args.runs)
        return {"benchmark": "guard_batch", "items_per_run": args.items, "runs": args.runs, "sizes": result,
                "server": await server_facts(admin_url), "load_average": os.getloadavg()}

    if args.url:
        result = asyncio.run(run(args.url))
    else:
        with fast_commit_server() as admin_url:
            result = asyncio.run(run(admin_url))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
