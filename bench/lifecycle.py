"""W3: lifecycle drain of N jobs (create in batch, claim, complete) by vjm, procrastinate and PgQueuer.

All three run in this process, against the same fresh database, with the same number of
workers; a run creates `jobs` jobs in one batch call and ends when every one of them is
finished. jobs/s of the whole run (create + drain); ratios are vjm / peer.

- vjm: `videojobs.connect(url, listeners=False)` for the workers, and the projector in a
  process of its own (as `vjm listen` runs it next to a processor fleet), projecting every
  event while the drain runs; `bulk_create_jobs` (10,000 per call), then `workers` tasks
  each loop `claim_jobs(worker_id, limit=batch)` and report the claimed batch done with one
  `complete_jobs([...], with_jobs=False)` call (as PgQueuer acknowledges a batch at once, and
  as `videojobs.Worker` reports: a processor needs no job back); the `vjm_with_jobs` variant
  has each completed job returned (the default), the `vjm_one_by_one` variant calls
  `complete_job` per job. Every transition is a
  validated, hash-chained event, and the jobs table, stats and change feed are projected
  from them. The time the projector then needs to show the last completion is reported too
  (`vjm_projection_catch_up_s`); it is not in jobs/s, as the peers have no read model.
- procrastinate: `App(PsycopgConnector(conninfo, min_size=max_size=workers + 2))`, a no-op
  async task, `task.batch_defer_async(*jobs)` (one statement), then
  `app.run_worker_async(concurrency=workers, wait=False)` (the worker exits when the queue is
  empty). procrastinate fetches one job per fetch (it has no batch fetch); finished jobs are
  kept (the default, `delete_jobs="never"`).
- PgQueuer: `Queries(AsyncpgDriver(conn)).enqueue([...], [...], [...])` (one statement), then
  `workers` QueueManagers, each on its own asyncpg connection, `run(batch_size=batch,
  mode=QueueExecutionMode.drain)` with a no-op async entrypoint.

Neither peer sends telemetry (checked in their sources: PgQueuer's OpenTelemetry/Sentry
tracing is opt-in and not enabled here; procrastinate has none).

`python -m bench.lifecycle [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg

import videojobs

from .bulk_create import job_spec
from .common import interleaved, projector_process, run_standalone, wait_projected

MANAGER_CHUNK = 10_000
TARGETS = {"procrastinate": 3.0, "pgqueuer": 1.0}
OUTPUTS = ["/out/1.mp4", "/out/2.mp4"]


async def vjm_drain(manager: videojobs.VideoJobManager, jobs: int, workers: int, batch: int, *,
                    with_jobs: bool = False) -> float:
    """Create `jobs` jobs; `workers` workers claim a batch and report it done together; seconds."""
    async def work(name: str) -> int:
        attempts = await manager.claim_jobs(name, limit=batch)
        if attempts:
            results = await manager.complete_jobs([
                {"job_id": a.job_id, "attempt": a.attempt, "output_paths": OUTPUTS, "processing_time": 1.5}
                for a in attempts], actor=name, with_jobs=with_jobs)
            assert all(r.ok for r in results), results
        return len(attempts)
    return await _drain(manager, jobs, workers, work)


async def vjm_one_by_one_drain(manager: videojobs.VideoJobManager, jobs: int, workers: int, batch: int) -> float:
    """The same drain, each claimed job reported on its own with complete_job (one commit per job)."""
    async def work(name: str) -> int:
        attempts = await manager.claim_jobs(name, limit=batch)
        for attempt in attempts:
            await manager.complete_job(attempt.job_id, OUTPUTS, 1.5, attempt=attempt.attempt, actor=name)
        return len(attempts)
    return await _drain(manager, jobs, workers, work)


CATCH_UP: list[float] = []  # seconds from the end of each vjm drain until the projection showed it


async def _drain(manager, jobs: int, workers: int, work: Callable[[str], Awaitable[int]]) -> float:
    specs = [job_spec(i) for i in range(jobs)]
    started = time.perf_counter()
    for offset in range(0, jobs, MANAGER_CHUNK):
        await manager.bulk_create_jobs(specs[offset:offset + MANAGER_CHUNK])
    done = [0]

    async def worker(name: str) -> None:
        while done[0] < jobs:
            finished = await work(name)
            if not finished:
                await asyncio.sleep(0.002)  # the rest are claimed by others and not yet reported
            done[0] += finished

    await asyncio.gather(*(worker(f"w{i}") for i in range(workers)))
    elapsed = time.perf_counter() - started
    conn = await asyncpg.connect(manager.database_url)
    try:
        await wait_projected(conn)
    finally:
        await conn.close()
    CATCH_UP.append(time.perf_counter() - started - elapsed)
    return elapsed


@contextlib.asynccontextmanager
async def procrastinate_app(url: str, workers: int):
    """An open procrastinate App with its schema and a no-op task `transcode`."""
    from procrastinate import App, PsycopgConnector

    app = App(connector=PsycopgConnector(conninfo=url, min_size=workers + 2, max_size=workers + 2))

    @app.task(name="transcode", queue="bench")
    async def transcode(**job) -> None:
        return None

    async with app.open_async():
        yield app, transcode


async def procrastinate_drain(app, task, jobs: int, workers: int) -> float:
    specs = [job_spec(i) for i in range(jobs)]
    started = time.perf_counter()
    await task.batch_defer_async(*specs)
    await app.run_worker_async(queues=["bench"], concurrency=workers, wait=False, install_signal_handlers=False)
    return time.perf_counter() - started


async def pgqueuer_drain(url: str, queries, jobs: int, workers: int, batch: int) -> float:
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    payloads = [json.dumps(job_spec(i)).encode() for i in range(jobs)]
    conns = [await asyncpg.connect(url) for _ in range(workers)]
    try:
        managers = []
        for conn in conns:
            qm = QueueManager(Queries(AsyncpgDriver(conn)))

            @qm.entrypoint("transcode")
            async def transcode(job) -> None:
                return None
            managers.append(qm)
        started = time.perf_counter()
        await queries.enqueue(["transcode"] * jobs, payloads, [0] * jobs)
        await asyncio.gather(*(qm.run(batch_size=batch, mode=QueueExecutionMode.drain) for qm in managers))
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()
    return elapsed


async def measure(url: str, manager, queries, jobs: int, workers: int, batch: int,
                  runs: int, variants: bool) -> dict:
    """jobs/s of the systems at one worker count, interleaved (warm-up with a tenth of the jobs)."""
    async with procrastinate_app(url, workers) as (app, task):
        def systems(n: int) -> dict[str, Callable[[], Awaitable[float]]]:
            chosen = {
                "vjm": lambda: _rate(n, vjm_drain(manager, n, workers, batch)),
                "vjm_with_jobs": lambda: _rate(n, vjm_drain(manager, n, workers, batch, with_jobs=True)),
                "vjm_one_by_one": lambda: _rate(n, vjm_one_by_one_drain(manager, n, workers, batch)),
                "procrastinate": lambda: _rate(n, procrastinate_drain(app, task, n, workers)),
                "pgqueuer": lambda: _rate(n, pgqueuer_drain(url, queries, n, workers, batch)),
            }
            return chosen if variants else {k: v for k, v in chosen.items() if k in ("vjm", *TARGETS)}
        for warm_up in systems(max(100, jobs // 10)).values():
            await warm_up()
        CATCH_UP.clear()
        result = await interleaved(systems(jobs), runs, warm_up=False)
    vjm = result["vjm"]["median"]
    row = {"workers": workers, "batch_size": batch, "jobs": jobs,
           **{f"{name}_jobs_per_s": round(r["median"], 1) for name, r in result.items()}}
    for peer, target in TARGETS.items():
        ratio = vjm / result[peer]["median"]
        row[f"ratio_vs_{peer}"] = round(ratio, 3)
        row[f"met_vs_{peer}"] = ratio >= target
    row["vjm_projection_catch_up_s"] = round(statistics.median(CATCH_UP), 3)
    row["samples"] = {name: [round(x, 1) for x in r["samples"]] for name, r in result.items()}
    return row


async def _rate(jobs: int, drain: Awaitable[float]) -> float:
    return jobs / await drain


async def install_peers(url: str, conn: asyncpg.Connection):
    """Install both peers' schemas into the database; returns PgQueuer's Queries on `conn`."""
    from pgqueuer import AsyncpgDriver, Queries

    async with procrastinate_app(url, 1) as (app, _):
        await app.schema_manager.apply_schema_async()
    queries = Queries(AsyncpgDriver(conn))
    await queries.install()
    return queries


async def run(url: str, smoke: bool) -> dict:
    """The whole W3 workload on the (fresh, migrated) database at `url`.

    The headline row (10,000 jobs, 8 workers) runs every variant; the sweep across worker
    counts (for the plot) runs vjm and the two peers on 1,000 jobs, to keep `make bench` short.
    """
    batch, runs = 10, 3
    plan = [(300, 4, True)] if smoke else [(10_000, 8, True), (1_000, 1, False), (1_000, 4, False),
                                           (1_000, 16, False)]
    for name in ("procrastinate", "pgqueuer", "psycopg", "psycopg.pool"):
        logging.getLogger(name).setLevel(logging.WARNING)
    conn = await asyncpg.connect(url)
    try:
        queries = await install_peers(url, conn)
        async with projector_process(url), videojobs.connect(url, listeners=False) as manager:
            rows = [await measure(url, manager, queries, jobs, n, batch, runs, variants)
                    for jobs, n, variants in plan]
    finally:
        await conn.close()
    return {"benchmark": "lifecycle", "workload": "W3 lifecycle drain", "smoke": smoke, "runs": runs,
            "targets": TARGETS, "rows": sorted(rows, key=lambda r: r["workers"]),
            "headline_workers": plan[0][1]}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
