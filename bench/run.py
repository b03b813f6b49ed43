"""Run the benchmark suite: each workload on a fresh database of one server, in one run.

Writes bench/results/<date>.json and .md and refreshes the table in bench/README.md.
`--smoke` is the small version CI runs (well under 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from pathlib import Path

from videojobs.logs import configure_logging

from . import projection_lag, rebuild, write_path
from .common import bench_server, fresh_database, server_facts, write_json

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"
WORKLOADS = {"write_path": write_path.run, "projection_lag": projection_lag.run, "rebuild": rebuild.run}
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


async def run_suite(admin_url: str, smoke: bool, only: list[str] | None) -> dict:
    """Every selected workload, each on its own fresh database."""
    report = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "smoke": smoke,
              "server": await server_facts(admin_url), "workloads": {}}
    for name, workload in WORKLOADS.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        async with fresh_database(admin_url) as url:
            report["workloads"][name] = await workload(url, smoke)
        print(f"  {name}: {time.perf_counter() - started:.1f}s", flush=True)
    return report


def markdown(report: dict) -> str:
    """The headline figures as a markdown table."""
    lines = [f"Run of {report['date']} ({'smoke' if report['smoke'] else 'full'}), "
             f"{report['server']['version'].split(' on ')[0]}, "
             f"fdatasync {report['server']['pg_test_fsync'].get('usecs_per_op', '?')} us/op.", "",
             "| workload | figure | vjm | reference | ratio | target |", "|---|---|---|---|---|---|"]
    w1 = report["workloads"].get("write_path")
    for row in (w1 or {}).get("rows", []):
        lines.append(f"| W1 writes, {row['connections']} conn | transitions/s | {row['vjm_per_s']} | "
                     f"INSERT+NOTIFY {row['ceiling_notify_per_s']} | {row['ratio_vs_notify_ceiling']} | >= 0.8 |")
        lines.append(f"| W1 writes, {row['connections']} conn | transitions/s | {row['vjm_per_s']} | "
                     f"INSERT {row['ceiling_insert_per_s']} | {row['ratio_vs_insert_ceiling']} | |")
    lag = report["workloads"].get("projection_lag")
    if lag:
        at_half = lag["lag_at_half_max_rate"]
        lines.append(f"| W4 projection lag at 50% of max | p50 / p99 ms | {at_half.get('p50_ms')} / "
                     f"{at_half.get('p99_ms')} | | | p99 < 100 |")
        burst = lag["burst_concurrent"]
        lines.append(f"| vjm_jobs notifications, burst | count | {burst.get('notifications')} | "
                     f"{burst.get('events')} events | | bounded |")
    reb = report["workloads"].get("rebuild")
    if reb:
        lines.append(f"| rebuild from empty | events/s | {reb['rebuild_from_empty']['events_per_s']} | | | >= 20000 |")
    return "\n".join(lines) + "\n"


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
    args = parser.parse_args()
    configure_logging("WARNING")
    with bench_server(prefer_local=not args.embedded) as admin_url:
        report = asyncio.run(run_suite(admin_url, args.smoke, args.only))
    stamp = report["date"][:10] + ("-smoke" if args.smoke else "")
    write_json(RESULTS / f"{stamp}.json", report)
    table = markdown(report)
    (RESULTS / f"{stamp}.md").write_text(table)
    if not args.smoke:
        update_readme(table)
    print(table)


if __name__ == "__main__":
    main()
