"""W8 before and after: `vjm up` of two (or more) trees and the ceiling app, in one run, interleaved.

Each tree is a checkout (e.g. `git worktree add /tmp/before <commit>`). Its `vjm up` runs with that
tree first on PYTHONPATH, on a fresh empty database that it migrates itself; the ceiling app
(bench/http_ceiling.py, from this tree) has a database of its own. Then one warm-up of each server
and `--rounds` rounds of `hey -c 16 -z <seconds>s` creates (bench/http_hey.py), the order of the
servers rotating each round. Prints one JSON document: per server, the medians of req/s, p50,
p99 and server CPU per request, each tree's ratios to the ceiling, the load and the disk regime.

`python -m bench.http_ab --tree before=/tmp/before --tree after=. [--rounds 5] [--seconds 10]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

import asyncpg

from .common import LOCAL_SERVER, fresh_database, server_facts
from .http_hey import SECRET, TREE, VJM_UP, Server, database_of, ensure_hey, free_port, measure, served


async def compare(admin_url: str, trees: list[tuple[str, Path]], rounds: int, seconds: float) -> dict:
    """Every tree's `vjm up` and the ceiling, each on its own database, measured in interleaved rounds."""
    hey, why = ensure_hey(install=True)
    if hey is None:
        raise SystemExit(f"http_ab: {why}")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VJM_", "CEILING_", "PYTHONPATH"))}
    load = os.getloadavg()
    async with contextlib.AsyncExitStack() as stack:
        probe = await asyncpg.connect(admin_url)
        stack.push_async_callback(probe.close)
        servers = {}
        for name, tree in trees:
            url, port = await stack.enter_async_context(fresh_database(admin_url, migrated=False)), free_port()
            argv = [sys.executable, "-c", VJM_UP, "up", "--port", str(port), "--database-url", url]
            env = base | {"PYTHONPATH": str(tree), "VJM_JWT_SECRET": SECRET}
            pid = await stack.enter_async_context(served(argv, env, port, cwd=tree))
            servers[name] = Server(port, pid, database_of(url))
        url, port = await stack.enter_async_context(fresh_database(admin_url, migrated=False)), free_port()
        argv = [sys.executable, "-m", "uvicorn", "bench.http_ceiling:app", "--port", str(port), "--log-level",
                "warning", "--no-access-log"]
        env = base | {"PYTHONPATH": str(TREE), "CEILING_DATABASE_URL": url, "CEILING_JWT_SECRET": SECRET}
        servers["ceiling"] = Server(port, await stack.enter_async_context(served(argv, env, port)), database_of(url))
        figures = await measure(hey, servers, rounds, seconds, min(3.0, seconds), probe)
    top = figures["ceiling"]
    ratios = {name: {"rate_ratio": round(f["requests_per_s"] / top["requests_per_s"], 3),
                     "p99_ratio": round(f["p99_ms"] / top["p99_ms"], 3)} for name, f in figures.items()}
    return {"figures": figures, "ratios_to_ceiling": ratios, "rounds": rounds, "seconds_per_round": seconds,
            "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--url", default=os.environ.get("VJM_TEST_DATABASE_URL") or LOCAL_SERVER)
    parser.add_argument("--no-fsync-probe", action="store_true", help="skip pg_test_fsync (the regime)")
    args = parser.parse_args()
    trees = [(name, Path(path).resolve()) for name, _, path in (t.partition("=") for t in args.tree)]
    report = asyncio.run(compare(args.url, trees, args.rounds, args.seconds))
    if not args.no_fsync_probe:
        report["server"] = asyncio.run(server_facts(args.url))
    print(json.dumps(report, default=str, indent=1))


if __name__ == "__main__":
    main()
