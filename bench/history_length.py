"""W7: the cost of a call as a job's history grows (issue 20: flat cost as history grows).

For each history length L (10, 100, 1,000 and 10,000 events per job; 10 and 1,000 in the smoke),
jobs with L events each (bench/history_build.py: built on the server through the real append
path, then projected). Then, with the projector running in its own process (as `vjm listen`),
per L, per call:
- append: `manager.report_progress(job_id, 1, percent)` on a processing job (the manager
  returns the job after the event); append_sql: its statement (event_append_with_job) alone;
- batch: 32 progress events on 32 jobs through `store.job_writes.append_events` and the
  manager's fold (what `Session.append_each`, and so `complete_jobs`, runs); batch_sql:
  `vjm.append_events` alone (event_append_many_events);
- claim: `manager.claim_jobs(worker, 1)` of the one queued job, a job of L events that
  `release_job` gave back just before (the release is not timed);
- get: `manager.get_job_by_id(job_id)`; get_sql: its statement (job_get_before) alone.
Every call starts with the projector caught up (not timed), so every L folds the same gap.
Per figure: wall time per call (p50, p99, mean), this process's CPU per call, and for the *_sql
figures and batch the CPU time of the server process that ran them (/proc/<pid>/schedstat). The
lengths take turns call by call (the order rotating), so a load that moves during the run moves
them alike; one warm-up and `runs` rounds of every figure, medians of the rounds. The ratio cost(L) / cost(shortest L) is the figure. Load-independent: the shared
buffers each statement touches per call (EXPLAIN (ANALYZE, BUFFERS), functions included),
median of 5 calls per L: equal counts mean no work grows with the history.

Measuring adds events to the jobs; there are enough jobs per L to keep that under a tenth of L
(`history_at_start` and `history_at_end`: the shortest and longest stream of each L).

`python -m bench.history_length [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

import videojobs
from store import NewEvent, prepare_event
from store.identity import ADMIN, connect_as
from store.job_writes import LATEST, append_events
from store.queries import bind, fetch_all
from videojobs.connect import login_of
from videojobs.manager.session import fold_job

from .common import interleaved_figures, percentile, projector_process, run_standalone, wait_projected
from .history_build import BATCH, LENGTHS_NOW, WORKER, Jobs, build, job_counts, load_jobs

LENGTHS, SMOKE_LENGTHS = (10, 100, 1_000, 10_000), (10, 1_000)
CALLS = {"append": 200, "append_sql": 200, "batch": 25, "batch_sql": 25, "claim": 50, "get": 200, "get_sql": 200}
SMOKE_CALLS = {"append": 20, "append_sql": 20, "batch": 3, "batch_sql": 3, "claim": 6, "get": 20, "get_sql": 20}
TARGET = 1.1
TARGETED = ("append", "batch")  # the "done": these at the longest history within 1.1x of the shortest
QUANTITIES = {"p50": "p50_ms", "p99": "p99_ms", "mean": "mean_ms", "client_cpu": "client_cpu_us",
              "server_cpu": "server_cpu_us"}
ON_RAW = ("append_sql", "batch", "batch_sql", "get_sql")  # the figures whose server CPU is measured
EXPLAINED = 5  # calls explained per statement and length
PROGRESS = {"percent": 50.0, "clips_done": 2}
Call = Callable[[], Awaitable[object]]


def cpu_ns(pid: int | None) -> int:
    """Nanoseconds process `pid` spent on a CPU so far (/proc/<pid>/schedstat; 0 when unreadable or None)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) if pid else 0
    except (OSError, ValueError, IndexError):
        return 0


async def timed(calls: dict[int, tuple[Call, Call]], n: int, backend: int | None = None) -> dict[str, float]:
    """`n` calls at each length, the lengths taking turns call by call (the order rotating), so drift hits all
    alike; `before` each call, not timed. Per length ("<L>:<figure>"): wall ms p50/p99/mean, this process's CPU
    per call, and with `backend` that server process's CPU per call (microseconds)."""
    lengths = list(calls)
    samples: dict[int, list[float]] = {length: [] for length in lengths}
    client, server = dict.fromkeys(lengths, 0.0), dict.fromkeys(lengths, 0)
    for i in range(n):
        for length in lengths[i % len(lengths):] + lengths[:i % len(lengths)]:
            call, before = calls[length]
            await before()
            cpu, started_cpu, started = cpu_ns(backend), time.process_time(), time.perf_counter()
            await call()
            samples[length].append(1000 * (time.perf_counter() - started))
            client[length] += time.process_time() - started_cpu
            server[length] += cpu_ns(backend) - cpu
    figures: dict[str, float] = {}
    for length, values in samples.items():
        figures |= {f"{length}:p50_ms": percentile(values, 0.5), f"{length}:p99_ms": percentile(values, 0.99),
                    f"{length}:mean_ms": sum(values) / n, f"{length}:client_cpu_us": 1e6 * client[length] / n}
        if backend:
            figures[f"{length}:server_cpu_us"] = server[length] / n / 1000
    return figures


def progress(job_id: UUID) -> NewEvent:
    return prepare_event("progress", PROGRESS, job_id=job_id, attempt=1)


def columns(job_ids: list[UUID]) -> dict[str, list[Any]]:
    """vjm.append_events' arrays for one progress event on each job."""
    n = len(job_ids)
    return {"job_ids": job_ids, "triggers": ["progress"] * n, "data": [PROGRESS] * n, "actors": [None] * n,
            "attempts": [1] * n, "expected_versions": [None] * n}


class Figures:
    """Each figure's calls at one history length: through the manager, or on `raw` (the service role)."""

    def __init__(self, manager: Any, raw: asyncpg.Connection, group: Jobs) -> None:
        self.manager, self.raw, self.group = manager, raw, group
        self.claimed: list[UUID] = []

    def work(self, kind: str, step: int = 1) -> list[UUID]:
        return self.group.next(kind, self.group.work, step)

    async def caught_up(self) -> None:
        await wait_projected(self.raw)

    async def append_sql(self) -> None:
        await fetch_all(self.raw, "event_append_with_job", **progress(self.work("append")[0]).params())

    async def batch(self) -> None:
        histories = await append_events(self.raw, [progress(j) for j in self.work("batch", BATCH)])
        [fold_job(h) for h in histories]  # type: ignore[arg-type]  # every item applies: each job is processing

    async def batch_sql(self) -> None:
        await fetch_all(self.raw, "event_append_many_events", **columns(self.work("batch", BATCH)))

    async def get_sql(self) -> None:
        await fetch_all(self.raw, "job_get_before", job_ids=self.work("get"), versions=[LATEST])

    async def release(self) -> None:
        """Give the next claim job back (the only queued job then), and wait for the projector."""
        self.claimed[:] = self.group.next("claim", self.group.claim)
        await self.manager.processors.release_job(self.claimed[0], self.group.attempts[self.claimed[0]])
        await self.caught_up()

    async def claim(self) -> None:
        [attempt] = await self.manager.claim_jobs(WORKER, 1)
        assert attempt.job_id == self.claimed[0], "the claim took the job just released"
        self.group.attempts[attempt.job_id] = attempt.attempt

    def call(self, name: str) -> tuple[Call, Call]:
        """Figure `name`'s call at this length and what runs before it (not timed)."""
        manager, ready = self.manager, self.caught_up
        return {
            "append": (lambda: manager.report_progress(self.work("append")[0], 1, 50.0), ready),
            "append_sql": (self.append_sql, ready),
            "batch": (self.batch, ready),
            "batch_sql": (self.batch_sql, ready),
            "claim": (self.claim, self.release),
            "get": (lambda: manager.get_job_by_id(self.work("get")[0]), ready),
            "get_sql": (self.get_sql, ready),
        }[name]

    async def buffers(self) -> dict[str, float]:
        """Shared buffers per call of each statement (median of EXPLAINED calls), functions included."""
        counts: dict[str, list[int]] = {"append": [], "batch": [], "claim": [], "get": []}
        for _ in range(EXPLAINED):
            await self.caught_up()
            counts["append"].append(await self.explain("event_append_with_job",
                                                       progress(self.work("append")[0]).params()))
            counts["batch"].append(await self.explain("event_append_many", columns(self.work("batch", BATCH))))
            counts["get"].append(await self.explain("job_get_before", {"job_ids": self.work("get"),
                                                                       "versions": [LATEST]}))
            await self.release()
            counts["claim"].append(await self.explain("job_claim_many", {"worker_id": WORKER, "limit": 1,
                                                                         "platforms": None, "lease_seconds": None}))
            self.group.attempts[self.claimed[0]] = await self.raw.fetchval(
                "SELECT attempt FROM vjm.job_events WHERE job_id = $1 ORDER BY version DESC LIMIT 1", self.claimed[0])
        return {name: statistics.median(values) for name, values in counts.items()}

    async def explain(self, query: str, params: dict[str, Any]) -> int:
        """Shared buffers (hit and read) the named query's execution touched, the functions it calls included."""
        sql, args = bind(query, params)
        plan = await self.raw.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
        return int(top["Shared Hit Blocks"] + top["Shared Read Blocks"])


async def measure(url: str, lengths: tuple[int, ...], calls: dict[str, int], runs: int) -> dict:
    """Every figure at every length, interleaved, with the projector running in its own process."""
    conn = await connect_as(url, role=ADMIN, login=login_of(url))  # the manager's service role
    try:
        async with projector_process(url), videojobs.connect(url, listeners=False) as manager:
            jobs = await load_jobs(conn, lengths)
            figures = {length: Figures(manager, conn, jobs[length]) for length in lengths}
            pid = conn.get_server_pid() if cpu_ns(conn.get_server_pid()) else None  # on this machine: its CPU

            def figure(name: str) -> Callable[[], Awaitable[dict[str, float]]]:
                backend = pid if name in ON_RAW else None
                return lambda: timed({length: figures[length].call(name) for length in lengths}, calls[name], backend)

            result = await interleaved_figures({name: figure(name) for name in calls}, runs)
            buffers = {str(length): await figures[length].buffers() for length in lengths}
            await wait_projected(conn)
            ends = await conn.fetch(LENGTHS_NOW)
    finally:
        await conn.close()
    return {"figures": {name: {str(length): _by_length(result[name], length) for length in lengths}
                        for name in calls},
            "buffers_per_call": buffers, "history_at_end": {str(r["length"]): [r["shortest"], r["longest"]]
                                                            for r in ends}}


def _by_length(figures: dict, length: int) -> dict:
    """One length's medians and per-round figures, out of a figure's "<L>:<name>" keys."""
    prefix = f"{length}:"
    mine = {k[len(prefix):]: round(v, 3) for k, v in figures.items() if k.startswith(prefix)}
    rounds = [{k[len(prefix):]: round(v, 3) for k, v in s.items() if k.startswith(prefix)} for s in figures["samples"]]
    return mine | {"samples": rounds}


def ratios(figures: dict, lengths: tuple[int, ...]) -> dict:
    """cost(L) / cost(shortest L) per figure: of the p50, p99 and mean wall time and of the CPU times."""
    base = str(lengths[0])
    return {name: {str(length): {q: round(by[str(length)][k] / by[base][k], 3)
                                 for q, k in QUANTITIES.items() if by[base].get(k)} for length in lengths}
            for name, by in figures.items()}


async def run(url: str, smoke: bool) -> dict:
    """The whole W7 workload on the (fresh, migrated) database at `url`."""
    lengths, calls, runs = (SMOKE_LENGTHS, SMOKE_CALLS, 3) if smoke else (LENGTHS, CALLS, 3)
    dataset = await build(url, lengths, calls, runs)
    dataset["jobs_per_length"] = {str(n): dict(zip(("work", "claim"), job_counts(n, calls, runs), strict=True))
                                  for n in lengths}
    measured = await measure(url, lengths, calls, runs)
    table = ratios(measured["figures"], lengths)
    longest = str(lengths[-1])
    targets = {name: {"ratio_p50": table[name][longest]["p50"], "target": TARGET,
                      "met": table[name][longest]["p50"] <= TARGET} for name in TARGETED}
    return {"benchmark": "history_length", "workload": "W7 history length", "smoke": smoke, "runs": runs,
            "calls_per_run": calls, "batch": BATCH, "lengths": list(lengths), "dataset": dataset,
            "ratios": table, "targets": targets, **measured}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
