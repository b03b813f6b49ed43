"""Run the benchmark suite: each workload on a fresh database of one server, in one run.

Writes bench/results/<date>.json and .md and refreshes the table in bench/README.md.
`--smoke` is the small version CI runs (well under 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

from store.logs import configure_logging

from . import (
    bulk_create,
    claims,
    fanout,
    heartbeat,
    history_length,
    http_hey,
    lifecycle,
    pooler,
    projection_lag,
    projector_cost,
    reads,
    rebuild,
    replica_lag,
    runtime_drain,
    wakeup,
    write_path,
)
from .common import bench_server, fast_commit_server, fresh_database, server_facts, write_json
from .report import markdown, plot

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"
WORKLOADS = {"write_path": write_path.run, "bulk_create": bulk_create.run, "lifecycle": lifecycle.run,
             "projection_lag": projection_lag.run, "reads": reads.run, "fanout": fanout.run,
             "rebuild": rebuild.run, "runtime_drain": runtime_drain.run, "wakeup": wakeup.run,
             "heartbeat": heartbeat.run, "history_length": history_length.run, "claims": claims.run,
             "projector_cost": projector_cost.run, "http_hey": http_hey.run, "pooler": pooler.run,
             "replica_lag": replica_lag.run}
try:  # the HTTP API benchmark is another engineer's file; run it when it is there
    from . import http_api

    WORKLOADS["http_api"] = http_api.run
except ImportError:
    pass
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"
# Measured again on an embedded server with a tmpfs data directory: what CPU alone allows (not durable).
FAST_COMMIT_WORKLOADS = ("write_path", "runtime_drain", "claims")


async def run_suite(admin_url: str, smoke: bool, only: list[str] | None) -> dict:
    """Every selected workload, each on its own fresh database."""
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "smoke": smoke,
              "server": await server_facts(admin_url), "workloads": {}}
    for name, workload in WORKLOADS.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        extra = {}
        if name == "projection_lag" and "write_path" in report["workloads"]:
            extra["max_rate"] = max(r["vjm_per_s"] for r in report["workloads"]["write_path"]["rows"])
        async with fresh_database(admin_url) as url:
            report["workloads"][name] = await workload(url, smoke, **extra)
        report["workloads"][name]["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(f"  {name}: {time.perf_counter() - started:.1f}s", flush=True)
    report["wall_seconds"] = round(sum(w["wall_seconds"] for w in report["workloads"].values()), 1)
    return report


def update_readme(table: str) -> None:
    """Replace the results table in bench/README.md."""
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{TABLE_START}\n{TABLE_END}\n"
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    README.write_text(f"{head}{TABLE_START}\n{table}{TABLE_END}{tail}")


def main() -> None:
    """Entry point of `make bench` and `make bench-smoke`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the small version (CI)")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), help="run only these workloads")
    parser.add_argument("--embedded", action="store_true", help="measure the embedded server, not 127.0.0.1:5432")
    parser.add_argument("--no-fast-commit", action="store_true",
                        help="skip the fast-commit run of W1, W3 and W5c (an embedded server on a tmpfs)")
    args = parser.parse_args()
    configure_logging("WARNING")
    if not args.only or "http_hey" in args.only:  # W8 drives the servers with hey: install it when missing
        _, why = http_hey.ensure_hey(install=True)
        if why:
            print(f"  http_hey will be skipped: {why}", flush=True)
    load = os.getloadavg()
    with bench_server(prefer_local=not args.embedded) as admin_url:
        report = asyncio.run(run_suite(admin_url, args.smoke, args.only))
    fast = [name for name in FAST_COMMIT_WORKLOADS if not args.only or name in args.only]
    if fast and not args.no_fast_commit:
        with fast_commit_server() as admin_url:
            report["fast_commit"] = asyncio.run(run_suite(admin_url, args.smoke, fast))
    report["load_average_before"] = [round(x, 2) for x in load]
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    # A partial run (--only) never replaces the full run's files or the README table.
    stamp = report["date"][:10] + ("-smoke" if args.smoke else "") + ("-" + "-".join(args.only) if args.only else "")
    write_json(RESULTS / f"{stamp}.json", report)
    image = plot(report, RESULTS / f"{stamp}.png")
    table = markdown(report, image=f"results/{image.name}" if image else None)
    (RESULTS / f"{stamp}.md").write_text(table)
    if not args.smoke and not args.only:
        update_readme(table)
    print(table)


if __name__ == "__main__":
    main()
