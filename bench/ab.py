"""Two (or more) trees side by side in one run: the before-and-after figures a change needs.

Each tree is a checkout (e.g. `git worktree add /tmp/before <commit>`). For every round and
every tree, a subprocess with that tree first on PYTHONPATH runs one workload on a fresh
database migrated by that tree's own code, with that tree's own benchmark code, against the
same server; the order of the trees alternates between rounds. The workloads are the
benchmark suite's own (`bench.write_path`, `bench.lifecycle`, `bench.runtime_drain`,
`bench.projection_lag`, `bench.fanout`), so a figure here is the figure `make bench` would
report for that tree:

- w1: W1 at 8 connections (4,000 transitions, best of 3), and its ratio to INSERT+NOTIFY
  measured in the same subprocess;
- w3: the W3 suite (10,000 jobs / 8 workers against PgQueuer and procrastinate, and the sweep);
- w3r: W3 through the runtime (`bench.runtime_drain`: a Worker running 8 at a time against
  PgQueuer capped at 8, PgQueuer uncapped and procrastinate, 10,000 jobs);
- w4: W4 projection lag at 25/50/75% of the write rate it measures first;
- w6: W6 SSE fan-out (100 subscribers, 200 writes/s);
- pc, pc-smoke: the projector's cost per event (`bench.projector_cost`, full or smoke sizes; a tree
  older than it needs the file copied in);
- w1cpu: W1 at 8 and 32 connections with the CPU split (`bench.cpu_split`: the raw INSERT and
  INSERT+NOTIFY ceilings, vjm one append per statement and with write combining; transitions/s, the
  client's and the server's CPU per transition, latency p50/p99), 4,000 transitions, median of 3;
- claims: W5c at a smaller size (`bench.claims`: W3 through the runtime against PgQueuer capped at 8,
  3,000 jobs; then claim latency of 4 processors, 200 claims each, with and without caps, limit 1 and
  10, on a queue of 100,000 jobs of 1,000 users).

`python -m bench.ab --tree before=/tmp/before --tree after=. [--rounds 1] [--fast-commit] [w1 w3 w3r w4 w6]`
prints one JSON document (every row of every run, the load average, the disk regime). `--fast-commit`
runs every workload on an embedded server whose data directory is a tmpfs (`bench.common.fast_commit_server`:
commits cost no disk flush; not durable), instead of `--url`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import LOCAL_SERVER, fast_commit_server, server_facts

SNIPPET = """
import asyncio, json, sys
import asyncpg
from bench.common import fresh_database
import logging, structlog

async def main(admin_url, workload):
    logging.basicConfig(level=logging.WARNING)  # the same quiet logging in every tree, old or new
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    async with fresh_database(admin_url) as url:
        if workload == "w1":
            from bench import write_path
            conn = await asyncpg.connect(url)
            await conn.execute(write_path.RAW_SCHEMA)
            await conn.close()
            return await write_path.measure(url, 8, 4000, 3)
        if workload == "w3":
            from bench import lifecycle
            return await lifecycle.run(url, False)
        if workload == "w3r":
            from bench import runtime_drain
            return await runtime_drain.run(url, False)
        if workload == "w1cpu":
            from bench import cpu_split, write_path
            conn = await asyncpg.connect(url)
            await conn.execute(write_path.RAW_SCHEMA)
            await conn.close()
            return {c: await cpu_split.measure(url, c, 4000, 3) for c in (8, 32)}
        if workload == "claims":
            from bench import claims
            drain = await claims.drain_ratio(url, 3000, 3)
            dataset = await claims.build(url, 100_000, 1000, 10_000)
            return {"drain": drain, "dataset": dataset, **await claims.claim_latency(url, 200, 3)}
        if workload in ("pc", "pc-smoke"):
            from bench import projector_cost
            return await projector_cost.run(url, workload == "pc-smoke")
        if workload == "w4":
            from bench import projection_lag
            return await projection_lag.run(url, False)
        from bench import fanout
        return await fanout.run(url, False)

print("AB-RESULT " + json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2])), default=str))
"""


def run_one(tree: Path, admin_url: str, workload: str) -> dict:
    """One workload in a subprocess importing `tree`'s code; its result."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", SNIPPET, admin_url, workload], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=3600)
    for line in done.stdout.splitlines():
        if line.startswith("AB-RESULT "):
            return json.loads(line.removeprefix("AB-RESULT "))
    raise RuntimeError(f"{tree} {workload} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--url", default=os.environ.get("VJM_TEST_DATABASE_URL") or LOCAL_SERVER)
    parser.add_argument("--fast-commit", action="store_true", help="an embedded server on a tmpfs instead of --url")
    parser.add_argument("workloads", nargs="*", default=["w1", "w3", "w4", "w6"],
                        choices=["w1", "w3", "w3r", "w4", "w6", "pc", "pc-smoke", "w1cpu", "claims"])
    args = parser.parse_args()
    trees = [(name, Path(path).resolve()) for name, _, path in (t.partition("=") for t in args.tree)]
    if args.fast_commit:
        with fast_commit_server() as url:
            report = compare(trees, url, args.workloads, args.rounds)
    else:
        report = compare(trees, args.url, args.workloads, args.rounds)
    print(json.dumps(report, default=str, indent=1))


def compare(trees: list[tuple[str, Path]], url: str, workloads: list[str], rounds: int) -> dict:
    """Every workload for every tree, `rounds` times, the trees' order alternating between rounds."""
    report: dict = {"server": asyncio.run(server_facts(url)), "load_before": os.getloadavg(), "runs": []}
    for round_ in range(rounds):
        for workload in workloads:
            order = trees if round_ % 2 == 0 else trees[::-1]
            for name, path in order:
                result = run_one(path, url, workload)
                report["runs"].append({"round": round_, "workload": workload, "tree": name, "result": result,
                                       "load": os.getloadavg()})
                print(f"round {round_} {workload} {name}: done", file=sys.stderr, flush=True)
    report["load_after"] = os.getloadavg()
    return report


if __name__ == "__main__":
    main()
