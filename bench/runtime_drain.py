"""W3 through the runtime: a drain of N jobs by one worker runtime running 8 jobs at a time, no-op handler.

vjm, PgQueuer and procrastinate each run their own worker runtime, in this process, against
the same fresh database, interleaved (bench.common.interleaved). A run creates `jobs` jobs in
one batch call and ends when every one of them is finished; jobs/s of the whole run.

- vjm: `videojobs.Worker(manager=..., concurrency=8)` with a no-op handler returning one output
  path; the projector runs in a process of its own (as `vjm listen` runs it) and projects every
  event during the run. The worker's manager is opened once, outside the timing (as the peers'
  connections are); each run starts a new Worker (its claim loop, completion batcher, lease
  keeper, cancel watcher and registry beat) after `bulk_create_jobs` and stops it once every
  attempt has ended as completed. Every job gets a 60 s lease (its renewals fall outside a run)
  and is completed through the batcher (one `complete_jobs` per batch that gathered).
- PgQueuer: one `QueueManager` on one asyncpg connection, `run(batch_size=4,
  max_concurrent_tasks=8, mode=QueueExecutionMode.drain)`: at most 8 jobs picked at once
  (its hard cap, which must be at least twice the batch). The entrypoint's own
  `concurrency_limit=8` was measured too and is far slower (78 jobs/s with batch 10, 1,325 with
  batch 4), so it is not the reference. `pgqueuer_uncapped` (batch 10, no cap: up to 10 at once,
  lifecycle.py's set-up for one worker) is reported beside it.
- procrastinate: `app.run_worker_async(concurrency=8, wait=False)` (lifecycle.py's set-up).

`python -m bench.runtime_drain [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg

import videojobs

from .bulk_create import job_spec
from .common import interleaved, projector_process, run_standalone
from .lifecycle import MANAGER_CHUNK, install_peers, procrastinate_app, procrastinate_drain

CONCURRENCY = 8
TARGET_VS_PGQUEUER = 1.0
OUTPUT = ["/out/1.mp4"]


async def vjm_runtime_drain(manager: videojobs.VideoJobManager, jobs: int, concurrency: int) -> float:
    """Create `jobs` jobs, run a Worker until every attempt ended completed; seconds."""
    specs = [job_spec(i) for i in range(jobs)]
    started = time.perf_counter()
    for offset in range(0, jobs, MANAGER_CHUNK):
        await manager.bulk_create_jobs(specs[offset:offset + MANAGER_CHUNK])
    worker = videojobs.Worker(manager=manager, concurrency=concurrency, lease_seconds=60, poll_interval=1.0)

    @worker.handler
    async def noop(job, ctx) -> list[str]:
        return OUTPUT

    outcomes: Counter[str] = Counter()

    def all_ended(result) -> bool:
        outcomes[result.outcome] += 1
        return outcomes.total() >= jobs
    every_one = asyncio.ensure_future(worker.signals.ended.next(all_ended, timeout=600))
    await asyncio.sleep(0)  # the waiter hears every attempt's end from the first on
    running = asyncio.create_task(worker.run(handle_signals=False))
    await every_one
    elapsed = time.perf_counter() - started
    worker.stop()
    await running
    assert outcomes == {"completed": jobs}, outcomes
    return elapsed


async def pgqueuer_runtime_drain(url: str, queries, jobs: int, concurrency: int | None) -> float:
    """Enqueue `jobs` jobs, one QueueManager drains them running at most `concurrency` at a time (None: batches
    of 10, uncapped); seconds."""
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    payloads = [json.dumps(job_spec(i)).encode() for i in range(jobs)]
    conn = await asyncpg.connect(url)
    try:
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint("transcode")
        async def transcode(job) -> None:
            return None

        started = time.perf_counter()
        await queries.enqueue(["transcode"] * jobs, payloads, [0] * jobs)
        await qm.run(batch_size=concurrency // 2 if concurrency else 10, max_concurrent_tasks=concurrency,
                     mode=QueueExecutionMode.drain)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return elapsed


async def measure(url: str, manager, queries, jobs: int, runs: int) -> dict:
    """jobs/s of the three runtimes, interleaved, after a warm-up with a tenth of the jobs."""
    async with procrastinate_app(url, CONCURRENCY) as (app, task):
        def systems(n: int) -> dict[str, Callable[[], Awaitable[float]]]:
            return {"vjm": lambda: _rate(n, vjm_runtime_drain(manager, n, CONCURRENCY)),
                    "pgqueuer": lambda: _rate(n, pgqueuer_runtime_drain(url, queries, n, CONCURRENCY)),
                    "pgqueuer_uncapped": lambda: _rate(n, pgqueuer_runtime_drain(url, queries, n, None)),
                    "procrastinate": lambda: _rate(n, procrastinate_drain(app, task, n, CONCURRENCY))}
        for warm_up in systems(max(100, jobs // 10)).values():
            await warm_up()
        result = await interleaved(systems(jobs), runs, warm_up=False)
    vjm = result["vjm"]["median"]
    row = {"jobs": jobs, "concurrency": CONCURRENCY,
           **{f"{name}_jobs_per_s": round(r["median"], 1) for name, r in result.items()}}
    row["ratio_vs_pgqueuer"] = round(vjm / result["pgqueuer"]["median"], 3)
    row["met_vs_pgqueuer"] = row["ratio_vs_pgqueuer"] >= TARGET_VS_PGQUEUER
    row["ratio_vs_pgqueuer_uncapped"] = round(vjm / result["pgqueuer_uncapped"]["median"], 3)
    row["ratio_vs_procrastinate"] = round(vjm / result["procrastinate"]["median"], 3)
    row["samples"] = {name: [round(x, 1) for x in r["samples"]] for name, r in result.items()}
    return row


async def _rate(jobs: int, drain: Awaitable[float]) -> float:
    return jobs / await drain


async def run(url: str, smoke: bool) -> dict:
    """The whole workload on the (fresh, migrated) database at `url`: 10,000 jobs (smoke: 500), 3 runs each."""
    jobs, runs = (500, 3) if smoke else (10_000, 3)
    for name in ("procrastinate", "pgqueuer", "psycopg", "psycopg.pool"):
        logging.getLogger(name).setLevel(logging.WARNING)
    conn = await asyncpg.connect(url)
    try:
        queries = await install_peers(url, conn)
        async with projector_process(url), videojobs.connect(url, listeners=False) as opened:
            row = await measure(url, opened.as_service("worker:bench"), queries, jobs, runs)
    finally:
        await conn.close()
    return {"benchmark": "runtime_drain", "workload": "W3 through the runtime", "smoke": smoke, "runs": runs,
            "target_vs_pgqueuer": TARGET_VS_PGQUEUER, "row": row}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
