"""W1 and W3 through PgBouncer (transaction mode) against direct connections, in one run.

A PgBouncer (Debian's, bench/pgbouncer.py) runs in front of the measured server with as many
server connections as there are writers, so the pooler adds its hop and its rules, not a queue.

W1 (bench/write_path.py's writers: create -> start -> progress -> progress -> complete, one
autocommit append per transition through `EventStore.append`), 8 writers, on role pools acting
as vjm_admin, three ways:
- `direct`: the operator's login, its session role set once per connection;
- `pooled`: the same login through the pooler (VJM_DATABASE_POOLER=transaction): no statement
  cache, and the role taken per transaction (BEGIN; SET LOCAL ROLE ... / COMMIT around each append);
- `pooled_default_role`: an operator login whose default role is vjm_admin (ALTER ROLE ... SET
  role, as vjm_worker's is vjm_processor): through the pooler with no per-transaction role.
The raw INSERT ceiling, direct and through the pooler, shows what the hop alone costs.

W3 (bench/lifecycle.py's `vjm_drain`: one batch create, 8 workers claim 10 and complete them
together) on a `videojobs.connect()` manager, direct and pooled, with the projector in a process of
its own on the direct URL (a drain ends when the projection shows every job finished).

`python -m bench.pooler [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncpg

import videojobs
from store import EventStore, create_pool
from store.identity import ADMIN, create_role_pool
from store.pooler import TRANSACTION, pooled_kwargs
from videojobs.connect import login_of

from .common import interleaved, interleaved_figures, projector_process, run_standalone
from .lifecycle import vjm_drain
from .pgbouncer import pgbouncer_binary, running_pgbouncer
from .write_path import RAW_INSERT, RAW_SCHEMA, _raw_writer, _split, _timed, _vjm_writer

WRITERS = 8
OPERATOR = "vjm_bench_operator"  # a login whose default role is vjm_admin (made here, dropped at the end)


async def _operator_login(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP ROLE IF EXISTS {OPERATOR}")
        await conn.execute(f"CREATE ROLE {OPERATOR} LOGIN NOINHERIT IN ROLE vjm_admin")
        await conn.execute(f"ALTER ROLE {OPERATOR} SET role = 'vjm_admin'")
        await conn.execute(RAW_SCHEMA)
    finally:
        await conn.close()


async def _drop_operator(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP OWNED BY {OPERATOR}; DROP ROLE IF EXISTS {OPERATOR}")
    finally:
        await conn.close()


async def w1(url: str, pooled: str, ops: int, runs: int) -> dict:
    """W1 direct, pooled and pooled with a default role; the raw INSERT ceiling direct and pooled."""
    shares = _split(ops, WRITERS)
    total = sum(shares)
    login = login_of(url)
    pools = {
        "direct": await create_role_pool(url, role=ADMIN, login=login, min_size=WRITERS, max_size=WRITERS),
        "pooled": await create_role_pool(pooled, role=ADMIN, login=login, min_size=WRITERS, max_size=WRITERS,
                                         pooler=TRANSACTION),
        "pooled_default_role": await create_role_pool(pooled, role=ADMIN, login=OPERATOR, min_size=WRITERS,
                                                      max_size=WRITERS, pooler=TRANSACTION),
        "raw_direct": await create_pool(url, min_size=WRITERS, max_size=WRITERS),
        "raw_pooled": await create_pool(pooled, min_size=WRITERS, max_size=WRITERS,
                                        **pooled_kwargs(TRANSACTION, {})),
    }

    def vjm(pool: asyncpg.Pool):
        store = EventStore(pool)
        return lambda: _timed(total, lambda latencies: [_vjm_writer(store, n, latencies) for n in shares])

    def raw(pool: asyncpg.Pool):
        return lambda: _timed(total, lambda latencies: [_raw_writer(pool, n, RAW_INSERT, latencies) for n in shares])

    try:
        result = await interleaved_figures({name: (raw(p) if name.startswith("raw") else vjm(p))
                                            for name, p in pools.items()}, runs)
    finally:
        for pool in pools.values():
            await pool.close()
    row = {"writers": WRITERS, "ops_per_run": total}
    for name, figures in result.items():
        row |= {f"{name}_per_s": round(figures["per_s"]), f"{name}_p50_ms": round(figures["p50_ms"], 3),
                f"{name}_p99_ms": round(figures["p99_ms"], 3)}
    for name in ("pooled", "pooled_default_role"):
        row[f"{name}_ratio_vs_direct"] = round(result[name]["per_s"] / result["direct"]["per_s"], 3)
    row["raw_pooled_ratio_vs_raw_direct"] = round(result["raw_pooled"]["per_s"] / result["raw_direct"]["per_s"], 3)
    return row


async def w3(url: str, pooled: str, jobs: int, runs: int) -> dict:
    """W3 drains (jobs/s) on a manager connected directly and on one through the pooler."""
    direct_settings = videojobs.Settings(database_url=url, pool_size=WRITERS + 2)
    pooled_settings = videojobs.Settings(database_url=pooled, direct_database_url=url, database_pooler=TRANSACTION,
                                         pool_size=WRITERS + 2)
    async with projector_process(url), videojobs.connect(settings=direct_settings, listeners=False) as direct, \
            videojobs.connect(settings=pooled_settings, listeners=False) as through_pooler:
        async def rate(manager: videojobs.VideoJobManager) -> float:
            return jobs / await vjm_drain(manager, jobs, WRITERS, 10)

        medians = await interleaved({"direct": lambda: rate(direct), "pooled": lambda: rate(through_pooler)}, runs)
    direct_rate, pooled_rate = medians["direct"]["median"], medians["pooled"]["median"]
    return {"jobs": jobs, "workers": WRITERS, "direct_jobs_per_s": round(direct_rate),
            "pooled_jobs_per_s": round(pooled_rate), "pooled_ratio_vs_direct": round(pooled_rate / direct_rate, 3)}


async def run(url: str, smoke: bool) -> dict:
    """W1 and W3 direct and through PgBouncer on the (fresh, migrated) database at `url`."""
    ops, jobs, runs = (1_000, 300, 1) if smoke else (10_000, 2_000, 3)
    if pgbouncer_binary() is None:
        print("  pooler skipped: pgbouncer is not installed", flush=True)
        return {"benchmark": "pooler", "skipped": "pgbouncer is not installed (apt-get install -y pgbouncer)"}
    await _operator_login(url)
    try:
        with running_pgbouncer(url, server_connections=WRITERS + 2, logins=(OPERATOR,)) as bouncer:
            pooled = bouncer.url_for(url)
            rows = {"w1": await w1(url, pooled, ops, runs), "w3": await w3(url, pooled, jobs, runs)}
    finally:
        await _drop_operator(url)
    return {"benchmark": "pooler", "workload": "W1 and W3 through PgBouncer (transaction mode) vs direct",
            "smoke": smoke, "runs": runs, "pgbouncer_server_connections": WRITERS + 2, **rows}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
