"""Wake-up latency: how long after a create an idle worker starts the job (p50, p99; target p99 < 50 ms).

Each system's worker runs idle in a process of its own; the benchmark creates one job at a
time, waits for the worker's handler to say that it started, then lets the worker go idle
again (100 ms) before the next. Latency = the handler's first line (time.time() in the worker
process) - the moment the create call began (time.time() here): it includes the create's own
round trip. Rounds of `per_round` jobs alternate between the systems; p50 and p99 are over every
job of a system.

- vjm: `videojobs.Worker(url, concurrency=1)` with its default 1 s poll interval, so a start
  sooner than that is the prompt wake-up (a queued-job notice on vjm_jobs, sent by the projector,
  which runs in a process of its own as `vjm listen` runs it); jobs are created by
  `VideoJobManager.create_job`.
- PgQueuer: one `QueueManager` (continuous mode, woken by its own NOTIFY) on its own connection;
  jobs are enqueued one by one with `Queries.enqueue`.

`python -m bench.wakeup [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

import videojobs

from .bulk_create import job_spec
from .common import percentile, projector_process, run_standalone

TARGET_P99_MS = 50.0
IDLE_GAP = 0.1  # seconds between a start and the next create: the worker is asleep again


def _vjm_worker(url: str, starts, ready, stop) -> None:
    """Child process: an idle videojobs.Worker that reports (filename, start time) of each job."""
    from store.logs import configure_logging

    configure_logging("WARNING", json=True)

    async def main() -> None:
        worker = videojobs.Worker(url, concurrency=1)

        @worker.handler
        async def stamp(job, ctx) -> list[str]:
            starts.put((job.original_filename, time.time()))
            return ["/out/1.mp4"]

        running = asyncio.create_task(worker.run(handle_signals=False))
        await worker.signals.ended.next(timeout=60)  # the warm-up job: the worker is up
        ready.set()
        await asyncio.to_thread(stop.wait)
        worker.stop()
        await running
    asyncio.run(main())


def _pgqueuer_worker(url: str, starts, ready, stop) -> None:
    """Child process: an idle PgQueuer QueueManager that reports (payload, start time) of each job."""
    from pgqueuer import AsyncpgDriver, Queries, QueueManager

    async def main() -> None:
        conn = await asyncpg.connect(url)
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint("wake")
        async def stamp(job) -> None:
            starts.put((job.payload.decode(), time.time()))
            if job.payload == b"warm-up":
                ready.set()

        async def stop_when_told() -> None:
            await asyncio.to_thread(stop.wait)
            qm.shutdown.set()
        stopper = asyncio.create_task(stop_when_told())
        await qm.run()
        await stopper
        await conn.close()
    asyncio.run(main())


@contextlib.asynccontextmanager
async def worker_process(target, url: str, warm_up: Callable[[], Awaitable[None]]) -> AsyncIterator[object]:
    """The worker `target` in a process of its own; yields the queue its handler reports starts on."""
    ctx = multiprocessing.get_context("spawn")
    starts, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    process = ctx.Process(target=target, args=(url, starts, ready, stop), daemon=True)
    process.start()
    try:
        await warm_up()
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError(f"{target.__name__} did not start")
        await asyncio.to_thread(starts.get, True, 10)  # the warm-up job's start
        yield starts
    finally:
        stop.set()
        await asyncio.to_thread(process.join, 30)


async def latencies(create: Callable[[str], Awaitable[None]], starts, name: str, count: int) -> list[float]:
    """Create `count` jobs one at a time; seconds from each create call to its handler's start."""
    out = []
    for i in range(count):
        await asyncio.sleep(IDLE_GAP)
        label = f"{name}-{i}.mp4"
        began = time.time()
        await create(label)
        seen, started = await asyncio.to_thread(starts.get, True, 30)
        assert seen == label, (seen, label)
        out.append(started - began)
    return out


def summary(samples: list[float]) -> dict:
    ms = [s * 1000 for s in samples]
    return {"jobs": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(percentile(ms, 0.99), 2),
            "max_ms": round(max(ms), 2)}


async def run(url: str, smoke: bool) -> dict:
    """Both systems, `rounds` alternating rounds of `per_round` jobs each."""
    rounds, per_round = (2, 20) if smoke else (4, 50)
    from pgqueuer import AsyncpgDriver, Queries

    conn = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        async with projector_process(url), videojobs.connect(url, listeners=False) as manager:
            async def vjm_create(label: str) -> None:
                await manager.create_job(**job_spec(0) | {"original_filename": label})

            async def pgqueuer_create(label: str) -> None:
                await queries.enqueue(["wake"], [label.encode()], [0])
            creators = {"vjm": vjm_create, "pgqueuer": pgqueuer_create}
            async with worker_process(_vjm_worker, url, lambda: vjm_create("warm-up")) as vjm_starts, \
                    worker_process(_pgqueuer_worker, url, lambda: pgqueuer_create("warm-up")) as pgq_starts:
                starts = {"vjm": vjm_starts, "pgqueuer": pgq_starts}
                samples: dict[str, list[float]] = {"vjm": [], "pgqueuer": []}
                for round_no in range(rounds):
                    for name in samples:
                        samples[name] += await latencies(creators[name], starts[name], f"{name}{round_no}", per_round)
    finally:
        await conn.close()
    figures = {name: summary(s) for name, s in samples.items()}
    vjm = figures["vjm"]
    return {"benchmark": "wakeup", "workload": "wake-up latency, create to start, idle worker", "smoke": smoke,
            "target_p99_ms": TARGET_P99_MS, "figures": figures, "met": vjm["p99_ms"] < TARGET_P99_MS,
            "p99_ratio_to_target": round(vjm["p99_ms"] / TARGET_P99_MS, 3),
            "p50_ratio_vs_pgqueuer": round(vjm["p50_ms"] / figures["pgqueuer"]["p50_ms"], 3)}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
