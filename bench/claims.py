"""W5 claims: claim latency at 1M queued jobs with fair turns and caps, and W3 through the runtime beside it.

Issue 19's benchmark (fair claims and caps, sql/schema/063_claims.sql). One run:

1. W3 through the runtime on a database of its own, before anything else loads the server: the
   vjm `Worker` (8 at a time) against PgQueuer capped at 8 picked jobs, with bench.runtime_drain's
   own drain functions, interleaved (warm-up at a tenth of the jobs, then `runs` rounds).
2. The queue (bench/claim_queue.py): 1,000,000 jobs of 10,000 users (`user<n % users>`, 100 each) queued through the real
   write path, `vjm.append_creates` as the trusted owner in chunks of 10,000 on two connections,
   the arrays built on the server (as bench/reads.py does). Each run of 10,000 consecutive jobs
   has one priority: 5% of the jobs 9, 25% 5, 70% 0, so every user has jobs at all three and the
   fair turns interleave the users within each priority. Then VACUUM ANALYZE.
3. Claim latency, on that queue, as four processors (`vjm_worker` logins acting as
   vjm_processor, one connection each) claiming at once: each claimer makes `claims` claims of
   `limit` jobs, keeps up to HOLD jobs processing and completes the oldest beyond that with one
   `vjm.append_events` call (the store's named query), so caps keep admitting work and keep
   binding. Client-side time around the claim statement (autocommit: the claim and its commit),
   and the server's time inside it (clock_timestamp() - statement_timestamp(), taken after the
   claim's rows are aggregated: the claim's execution without its commit). Variants, interleaved
   on the same queue: with caps (each user at most USER_CAP processing, `vjm.set_claim_cap('user',
   '*', n)`; CAPPED_PLATFORM at most PLATFORM_CAP) and without any cap (the fast path), each at
   limit 1 and limit 10, back to back (the claimers saturate the machine: the latency is mostly
   their wait for the CPU, and claims/s is the capacity); then paced, at PACED_JOBS_PER_S jobs
   claimed per second over the four (an offered load below the capacity; a claim held up by the one
   before it is timed from the slot it was due at, so it counts that wait: common.Pace). An admin
   connection samples the most jobs processing under one user and under the capped platform
   every 20 ms (the caps must hold; without caps they are exceeded).
   Each run starts with VACUUM vjm.run_queue: what the table's autovacuum setting (every 5,000
   dead entries) does on a live server once per run's claims and completions (this server's
   autovacuum may be off). track_functions = 'pl' on the database gives each run's mean time in
   vjm.claim_jobs and in vjm.claim_within_caps (pg_stat_user_functions deltas).

`python -m bench.claims [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from dataclasses import dataclass, field

import asyncpg

import videojobs
from store import connect
from store.claim_policy import set_claim_cap
from store.identity import PROCESSOR, connect_as
from store.queries import bind

from .claim_queue import CHUNK, build
from .common import (
    Pace,
    fresh_database,
    interleaved,
    interleaved_figures,
    percentile,
    projector_process,
    run_standalone,
)
from .lifecycle import install_peers
from .runtime_drain import CONCURRENCY, pgqueuer_runtime_drain, vjm_runtime_drain

TARGET_P99_MS = 2.0
CLAIMERS, HOLD = 4, 16
USER_CAP, CAPPED_PLATFORM, PLATFORM_CAP = 2, "tiktok", 10
# The offered load of the paced variants: jobs claimed per second over all claimers (claims of 1 every
# 20 ms per claimer, claims of 10 every 200 ms), a steady load that does not saturate the machine; the
# other variants claim back to back.
PACED_JOBS_PER_S = 200.0
# (name, caps set, limit, claims per second over all claimers or None: back to back): caps first, then the
# same claims on the fast path; saturated, then paced.
VARIANTS = [("caps_limit1", True, 1, None), ("caps_limit10", True, 10, None), ("nocaps_limit1", False, 1, None),
            ("nocaps_limit10", False, 10, None), ("caps_limit1_paced", True, 1, PACED_JOBS_PER_S),
            ("caps_limit10_paced", True, 10, PACED_JOBS_PER_S / 10),
            ("nocaps_limit1_paced", False, 1, PACED_JOBS_PER_S)]

# The claim, and the server's time inside it: the aggregate consumes every claimed row before
# its one output row (and clock_timestamp() in it) is computed.
CLAIM = """
SELECT array_agg(c.job_id) AS job_ids, array_agg(c.attempt) AS attempts,
       1000 * extract(epoch FROM clock_timestamp() - statement_timestamp())::float8 AS server_ms
  FROM vjm.claim_jobs($1, $2, NULL) AS c
"""
PROCESSING = f"""
SELECT coalesce((SELECT max(n) FROM (SELECT count(*) AS n FROM vjm.run_queue WHERE processing GROUP BY user_id) u), 0),
       (SELECT count(*) FROM vjm.run_queue WHERE processing AND platform_target = '{CAPPED_PLATFORM}')
"""
FUNCTION_TIMES = """
SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions
 WHERE schemaname = 'vjm' AND funcname IN ('claim_jobs', 'claim_within_caps')
"""


async def set_caps(admin: asyncpg.Connection, capped: bool) -> None:
    """The caps of a variant, through vjm.set_claim_cap as an admin (None removes a cap; only one that is set)."""
    present = {(r["kind"], r["key"]) for r in await admin.fetch("SELECT kind, key FROM vjm.claim_caps")}
    for kind, key, cap in (("user", "*", USER_CAP), ("platform", CAPPED_PLATFORM, PLATFORM_CAP)):
        if capped or (kind, key) in present:
            await set_claim_cap(admin, kind, key, cap if capped else None, "bench", None)


@dataclass
class Tally:
    """What one claimer saw in one run."""

    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    jobs: int = 0
    empty: int = 0


async def claimer(conn: asyncpg.Connection, worker: str, limit: int, claims: int, out: Tally,
                  pace: Pace | None = None) -> None:
    """`claims` timed claims; keeps up to HOLD jobs processing, completes the oldest beyond it.

    Back to back without `pace`: the time around each claim. With it, each claim is due at its
    slot, and one held up by the claim before it is timed from its slot, so it counts its wait (no
    coordinated omission; `Pace.slot`)."""
    held: deque[tuple] = deque()
    for i in range(claims):
        started = await pace.slot(i) if pace else time.perf_counter()
        row = await conn.fetchrow(CLAIM, worker, limit)
        out.client_ms.append(1000 * (time.perf_counter() - started))
        assert row is not None  # an aggregate: always one row
        if row["job_ids"] is None:
            out.empty += 1
            continue
        out.server_ms.append(row["server_ms"])
        out.jobs += len(row["job_ids"])
        held.extend(zip(row["job_ids"], row["attempts"], strict=True))
        if len(held) > HOLD:
            await complete(conn, worker, [held.popleft() for _ in range(len(held) - HOLD)])
    while held:
        await complete(conn, worker, [held.popleft() for _ in range(min(50, len(held)))])
    await conn.execute("SELECT pg_stat_force_next_flush()")  # this run's function times, before they are read


async def complete(conn: asyncpg.Connection, worker: str, done: list[tuple]) -> None:
    """One vjm.append_events call completing `done` ((job_id, attempt) pairs); every one must be taken."""
    sql, args = bind("event_append_many_events", {
        "job_ids": [j for j, _ in done], "triggers": ["complete"] * len(done),
        "data": [{"output_paths": ["/out/1.mp4"], "processing_time": 1.5}] * len(done),
        "actors": [worker] * len(done), "attempts": [a for _, a in done], "expected_versions": [None] * len(done)})
    refused = [r["error_code"] for r in await conn.fetch(sql, *args) if r["error_code"]]
    assert not refused, refused


async def claim_run(admin: asyncpg.Connection, conns: list[asyncpg.Connection], capped: bool, limit: int,
                    claims: int, rate: float | None = None) -> dict[str, float]:
    """One run of a variant: its caps, then every claimer at once (back to back, or `rate` claims per second over
    all of them, their slots spread evenly); the run's figures."""
    await set_caps(admin, capped)
    # What run_queue's autovacuum setting (sql/schema/060_write_api.sql: every 5,000 dead entries) does on a
    # live server once per run's worth of claims and completions; this server's autovacuum may be off.
    await admin.execute("VACUUM vjm.run_queue")
    before = await _function_times(admin)
    outs = [Tally() for _ in conns]
    seen, stop = [0, 0], asyncio.Event()
    watcher = asyncio.create_task(_watch(admin, seen, stop))
    started = time.perf_counter()
    paces = [Pace.spread(rate, len(conns), i, started) if rate else None for i in range(len(conns))]
    await asyncio.gather(*(claimer(c, f"bench-{i}", limit, claims, o, pace)
                           for i, (c, o, pace) in enumerate(zip(conns, outs, paces, strict=True))))
    elapsed = time.perf_counter() - started
    stop.set()
    await watcher
    calls = await _function_times(admin)
    client = [x for o in outs for x in o.client_ms]
    server = [x for o in outs for x in o.server_ms] or [0.0]
    return {"p50_ms": percentile(client, 0.5), "p95_ms": percentile(client, 0.95), "p99_ms": percentile(client, 0.99),
            "max_ms": max(client), "server_p50_ms": percentile(server, 0.5), "server_p99_ms": percentile(server, 0.99),
            "jobs_per_claim": sum(o.jobs for o in outs) / len(client), "empty_claims": sum(o.empty for o in outs),
            "claims_per_s": len(client) / elapsed, "offered_claims_per_s": rate or 0.0,
            "most_processing_one_user": seen[0], f"most_processing_{CAPPED_PLATFORM}": seen[1],
            **{f"{name}_mean_ms": _mean_ms(before, calls, name) for name in ("claim_jobs", "claim_within_caps")}}


async def _watch(admin: asyncpg.Connection, seen: list[int], stop: asyncio.Event) -> None:
    """The most jobs processing under one user and under the capped platform, every 20 ms, until `stop`."""
    while not stop.is_set():
        user_max, platform = await admin.fetchrow(PROCESSING) or (0, 0)
        seen[0], seen[1] = max(seen[0], user_max), max(seen[1], platform)
        await asyncio.sleep(0.02)  # poll


async def _function_times(admin: asyncpg.Connection) -> dict[str, tuple[int, float]]:
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    return {r["funcname"]: (r["calls"], r["total_time"]) for r in await admin.fetch(FUNCTION_TIMES)}


def _mean_ms(before: dict, after: dict, name: str) -> float:
    """Mean milliseconds per call of one function between two readings (0 when it was not called)."""
    calls = after.get(name, (0, 0.0))[0] - before.get(name, (0, 0.0))[0]
    return (after[name][1] - before.get(name, (0, 0.0))[1]) / calls if calls else 0.0


async def claim_latency(url: str, claims: int, runs: int) -> dict:
    """Every variant, interleaved: per-figure medians over the runs, and the samples."""
    admin = await connect(url)
    conns = [await connect_as(url, role=PROCESSOR) for _ in range(CLAIMERS)]
    try:
        result = await interleaved_figures(
            {name: functools.partial(claim_run, admin, conns, capped, limit, claims if rate is None else
                                     max(10, claims // limit), rate)  # paced: the same seconds at any limit
             for name, capped, limit, rate in VARIANTS}, runs)
    finally:
        for conn in (admin, *conns):
            await conn.close()
    figures = {k: {m: round(x, 3) if isinstance(x, float) else x for m, x in v.items() if m != "samples"}
               for k, v in result.items()}
    return {"figures": figures, "samples": {k: v["samples"] for k, v in result.items()}}


async def drain_ratio(url: str, jobs: int, runs: int) -> dict:
    """W3 through the runtime, vjm against PgQueuer capped at 8, on a database of its own."""
    async with fresh_database(url) as drain_url:
        conn = await asyncpg.connect(drain_url)
        try:
            queries = await install_peers(drain_url, conn)
            async with projector_process(drain_url), videojobs.connect(drain_url, listeners=False) as opened:
                manager = opened.as_service("worker:bench")

                def systems(n: int) -> dict:
                    return {"vjm": lambda: _rate(n, vjm_runtime_drain(manager, n, CONCURRENCY)),
                            "pgqueuer": lambda: _rate(n, pgqueuer_runtime_drain(drain_url, queries, n, CONCURRENCY))}
                for warm_up in systems(max(100, jobs // 10)).values():
                    await warm_up()
                result = await interleaved(systems(jobs), runs, warm_up=False)
        finally:
            await conn.close()
    return {"jobs": jobs, "concurrency": CONCURRENCY, "vjm_jobs_per_s": round(result["vjm"]["median"], 1),
            "pgqueuer_jobs_per_s": round(result["pgqueuer"]["median"], 1),
            "ratio_vs_pgqueuer": round(result["vjm"]["median"] / result["pgqueuer"]["median"], 3),
            "samples": {k: [round(x, 1) for x in v["samples"]] for k, v in result.items()}}


async def _rate(jobs: int, drain) -> float:
    return jobs / await drain


async def run(url: str, smoke: bool) -> dict:
    """The whole workload on the (fresh, migrated) database at `url`."""
    jobs, users, chunk, claims, runs, drain_jobs = ((20_000, 200, 2_000, 10, 3, 500) if smoke
                                                    else (1_000_000, 10_000, CHUNK, 500, 3, 10_000))
    drain = await drain_ratio(url, drain_jobs, runs)
    dataset = await build(url, jobs, users, chunk)
    admin = await connect(url)
    try:  # a database setting, for the claimers' sessions (a superuser's to set)
        await admin.execute(f'ALTER DATABASE "{await admin.fetchval("SELECT current_database()")}" '
                            "SET track_functions = 'pl'")
    finally:
        await admin.close()
    measured = await claim_latency(url, claims, runs)
    headline = {name: {"p99_ms": f["p99_ms"], "met": f["p99_ms"] < TARGET_P99_MS}
                for name, f in measured["figures"].items()}
    return {"benchmark": "claims", "workload": "W5 claims with fair turns and caps", "smoke": smoke, "runs": runs,
            "claimers": CLAIMERS, "claims_per_claimer": claims, "hold": HOLD, "target_p99_ms": TARGET_P99_MS,
            "caps": {"user:*": USER_CAP, f"platform:{CAPPED_PLATFORM}": PLATFORM_CAP}, "dataset": dataset,
            "targets": headline, "drain": drain, **measured,
            "median_of_runs": "figures are medians over the runs of each run's figure"}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
