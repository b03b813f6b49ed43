"""`make soak`: minutes of mixed load with random faults, then a full reckoning.

    python -m tests.faults.soak --minutes 10 [--writers 4] [--seed 1]

Runs on its own embedded PostgreSQL (a temporary data directory). Load: writers
drive jobs through create/start/progress/complete/fail/retry, users cancel and
retry their jobs and read their lists, the stuck detector resets idle jobs.
Faults, at random: kill the projector's connection, kill the writers' pooled
connections, restart the server (pg_ctl stop -m fast, start), hold a long
transaction open. At the end: events written, acknowledged, projected, the
differences (log vs checkpoint, acknowledged appends missing, verify_projections,
verify_history, cross-tenant reads) and RSS growth of each process. Exit status 1
on any difference.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import time

import asyncpg
import psutil
import structlog

from listeners import Projector, ProjectorConfig
from store.projections import verify_projections
from tests.support.databases import create_migrated_database
from tests.support.outage_writers import AMBIGUOUS, Ledger, write_until_stopped
from tests.support.owned_postgres import owned_server
from tests.support.waiting import eventually
from videojobs import Settings
from videojobs import connect as connect_manager


def _postgres_rss(server) -> dict[str, int]:
    """The server's RSS: the postmaster, and all its processes together (pids change across restarts)."""
    postmaster = psutil.Process(server._server.get_pid())
    children = postmaster.children()
    return {"postgres postmaster": postmaster.memory_info().rss,
            "postgres all processes": postmaster.memory_info().rss + sum(c.memory_info().rss for c in children)}


async def _users(manager, stop: asyncio.Event, stats: collections.Counter, rng: random.Random, writers: int,
                 ledger: Ledger) -> None:
    """End users: read their lists (checking tenancy), cancel and retry their own jobs."""
    while not stop.is_set():
        user = f"writer{rng.randrange(writers)}"
        scoped = manager.as_user(user)
        try:
            async with asyncio.timeout(5):
                page = await scoped.list_jobs(limit=20)
                stats["reads"] += 1
                stats["cross_tenant"] += sum(j.user_id != user for j in page.items)
                if page.items:
                    job = rng.choice(page.items)
                    action = scoped.cancel_job if job.status in ("queued", "processing") else scoped.retry_job
                    try:
                        changed = await action(job.job_id)
                        ledger.ack(changed.job_id, changed.version, "user")
                        stats["user_changes"] += 1
                    except AMBIGUOUS as exc:
                        ledger.failed(exc)
                        raise
                    except Exception:  # noqa: BLE001 - the job moved on meanwhile: a refused transition
                        stats["user_refused"] += 1
        except (TimeoutError, *AMBIGUOUS):
            stats["user_unavailable"] += 1
        await asyncio.sleep(rng.uniform(0.01, 0.05))  # deliberate pacing of the load


async def _faults(server, url: str, projector: Projector, stop: asyncio.Event, faults: collections.Counter,
                  rng: random.Random, ledger: Ledger) -> None:
    admin = server.admin_url
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(3, 10))  # deliberate: time between faults
            return
        except TimeoutError:
            pass
        kind = rng.choice(["kill_projector", "kill_writers", "restart_server", "long_transaction"])
        try:
            if kind == "restart_server":
                async with server.down():
                    before = ledger.ambiguous
                    with contextlib.suppress(TimeoutError):  # until a writer notices, at most 5 s
                        await eventually(lambda before=before: ledger.ambiguous > before, 5)
            elif kind == "long_transaction":
                conn = await asyncpg.connect(url)
                try:
                    async with conn.transaction():
                        await conn.fetchval("SELECT pg_current_xact_id()")
                        await asyncio.sleep(rng.uniform(1, 4))  # deliberate: the transaction stays open
                finally:
                    await conn.close()
            else:
                conn = await asyncpg.connect(admin)
                try:
                    if kind == "kill_projector" and projector.backend_pid:
                        await conn.fetchval("SELECT pg_terminate_backend($1)", projector.backend_pid)
                    elif kind == "kill_writers":
                        await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
                                         " 'vjm_soak' AND pid <> pg_backend_pid() AND pid <> $1"
                                         " AND backend_type = 'client backend'", projector.backend_pid or 0)
                finally:
                    await conn.close()
            faults[kind] += 1
        except AMBIGUOUS + (OSError,) as exc:
            faults["fault_injection_failed"] += 1
            print(f"fault {kind} could not be injected: {exc!r}")


async def soak(minutes: float, writers: int, seed: int) -> int:
    rng = random.Random(seed)
    with owned_server() as server:
        url = await create_migrated_database(server.admin_url, "vjm_soak")
        me = psutil.Process()
        rss_before = {"python (load, projector, listeners)": me.memory_info().rss, **_postgres_rss(server)}
        settings = Settings(database_url=url, pool_size=writers + 4)
        async with connect_manager(settings=settings, listeners=False, consistency_timeout=0.5) as manager:
            projector = Projector(ProjectorConfig(database_url=url, poll_interval=0.2, max_backoff=0.5))
            await projector.start()
            ledger, stop = Ledger(), asyncio.Event()
            faults, users = collections.Counter(), collections.Counter()
            tasks = [asyncio.create_task(write_until_stopped(manager, ledger, i, stop)) for i in range(writers)]
            tasks += [asyncio.create_task(_users(manager, stop, users, random.Random(seed + 100 + i), writers,
                                                      ledger))
                      for i in range(2)]
            tasks.append(asyncio.create_task(_faults(server, url, projector, stop, faults, rng, ledger)))
            started = time.monotonic()
            while time.monotonic() - started < minutes * 60:
                await asyncio.sleep(1)  # the soak's clock
                try:
                    async with asyncio.timeout(5):
                        await manager.maintenance.reset_stuck_jobs(older_than=2.0)  # time passes: idle jobs are stuck
                        faults["stuck_scans"] += 1
                except (TimeoutError, *AMBIGUOUS):
                    pass
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            crashed = [r for r in results if isinstance(r, BaseException)]
            report = await _reckon(url, manager, ledger, projector)
            await projector.stop()
            rss_after = {"python (load, projector, listeners)": me.memory_info().rss, **_postgres_rss(server)}
    report.update(minutes=minutes, faults=dict(faults), users=dict(users), crashed_tasks=[repr(c) for c in crashed],
                  untranslated_errors=dict(collections.Counter(type(e).__name__ for e in ledger.unclear)),
                  rss_growth_mb={k: round((rss_after.get(k, 0) - v) / 2**20, 1) for k, v in rss_before.items()},
                  rss_after_mb={k: round(v / 2**20, 1) for k, v in rss_after.items()})
    report["differences"] += len(crashed) + users["cross_tenant"]
    print(json.dumps(report, indent=2))
    return 0 if report["differences"] == 0 else 1


async def _reckon(url: str, manager, ledger: Ledger, projector: Projector) -> dict:
    deadline = time.monotonic() + 120
    conn = await asyncpg.connect(url)
    try:
        while True:
            total = await conn.fetchval("SELECT count(*) FROM vjm.job_events")
            projected = await conn.fetchval("SELECT events FROM vjm.projection_checkpoints WHERE name = 'main'")
            if projected == total or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)  # poll: bounded by the deadline
        rows = await conn.fetch("SELECT job_id, version, type FROM vjm.job_events")
    finally:
        await conn.close()
    stored = collections.Counter((r["job_id"], r["version"]) for r in rows)
    missing = sum(1 for job_id, version, _ in set(ledger.acknowledged) if stored[(job_id, version)] != 1)
    verify = await verify_projections(url)
    history = await manager.audit.verify_history()
    unacknowledged = total - len(set(ledger.acknowledged))
    differences = (total - projected) + missing + len(verify.differences) + (0 if history.ok else 1) \
        + (0 if unacknowledged <= ledger.ambiguous else 1)
    return dict(events_written=total, events_acknowledged=len(ledger.acknowledged), events_projected=projected,
                ambiguous_failures=ledger.ambiguous, unacknowledged_in_log=unacknowledged,
                acknowledged_missing=missing, verify_differences=len(verify.differences),
                verify_events=verify.events, history_ok=history.ok, history_checked=history.checked,
                differences=differences)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the soak; exit 1 on any difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    import logging

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.getLogger("asyncpg").setLevel(logging.CRITICAL)
    return asyncio.run(soak(args.minutes, args.writers, args.seed))


if __name__ == "__main__":
    raise SystemExit(main())
