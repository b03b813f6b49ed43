"""W6: fan-out of job changes to SSE subscribers while writes run: commit-to-client latency.

The HTTP API (`videojobs.http.create_app`, projector in-process, uvicorn on loopback) serves
`GET /api/v1/events/stream` to `subscribers` httpx clients with a service-role token (a
dashboard). Writers append transitions through `EventStore.append` at a fixed pace; each
append's return is its commit time. A subscriber receiving a `job_change` for (job_id, version)
records arrival - commit of that event (changes of one job coalesced into one batch are
measured at the version they carry: `feed_changes` rows, each due to every subscriber, so
`deliveries` should equal `deliveries_expected`). p50/p99 over all subscribers; target p99 < 250 ms.

All streams of the app share one change-feed reader (listeners/feed_hub.py: one LISTEN
connection, pages read once and fanned out to per-stream buffers), so the number of
subscribers does not depend on the server's free connections. `db_connections` is the
number of backends on the benchmark database while every subscriber is connected (the
app's two pools, projector, read-your-writes watcher, feed hub, and the writers' pool).

`VJM_BENCH_FANOUT_AS=users` runs the same workload with end-user tokens instead: every
subscriber is a different user, all members of the team the jobs belong to, so each page
the hub reads is checked by the database for every one of them (vjm.job_changes_visible).

`python -m bench.fanout [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import time

import asyncpg
import httpx
import uvicorn

from store import EventStore, create_pool, prepare_event
from store.teams import add_team_member, create_team
from videojobs import Settings
from videojobs.http import HttpOptions, create_app
from videojobs.http.auth import SERVICE_ROLE, USER_ROLE, mint_token

from .common import percentile, run_standalone
from .projection_lag import DATA

SECRET = "bench-secret-0123456789-0123456789"
TARGET_P99_MS = 250.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _subscriber(base: str, token: str, commits: dict, lags: list, ready: asyncio.Event,
                      counter: list, wanted: int) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=None) as client:
        async with client.stream("GET", "/api/v1/events/stream") as response:
            counter[0] += 1
            if counter[0] == wanted:
                ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    change = json.loads(line[5:])
                    committed = commits.get((change["job_id"], change["version"]))
                    if committed is not None:
                        lags.append(time.monotonic() - committed)


async def _writer(store: EventStore, until: float, interval: float, commits: dict, team_id) -> None:
    job_id, step, next_at = None, 0, time.monotonic()
    cycle = ("create", "start", "progress", "complete")
    while time.monotonic() < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        trigger = cycle[step % 4]
        event = await store.append(prepare_event(trigger, DATA[trigger], job_id=job_id, user_id="fan",
                                                 team_id=team_id if trigger == "create" else None, actor="bench"))
        commits[(str(event.job_id), event.version)] = time.monotonic()
        job_id = None if trigger == "complete" else event.job_id
        step += 1


async def _connections(url: str) -> int:
    """Backends on the benchmark database, this probe excluded."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


async def _team(pool: asyncpg.Pool, members: int):
    """A team whose members are the subscribing users fan-0 ... (the jobs belong to it)."""
    async with pool.acquire() as conn:
        team = await create_team(conn, "fanout", owner_id="fan")
        for i in range(members):
            await add_team_member(conn, team.team_id, f"fan-{i}")
    return team.team_id


async def run(url: str, smoke: bool, as_users: bool = False, read_url: str | None = None) -> dict:
    """p50/p99 commit-to-client latency with `subscribers` SSE clients and paced writers. `read_url`: a standby
    of `url` the app reads the change feed from (VJM_READ_DATABASE_URL; bench/replica_lag.py)."""
    wanted, seconds, rate, writers = (10, 3.0, 100.0, 2) if smoke else (100, 10.0, 200.0, 4)
    settings = Settings(database_url=url, jwt_secret=SECRET, pool_size=5, read_database_url=read_url)
    app = create_app(settings=settings, options=HttpOptions(sse_heartbeat_seconds=5.0))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)  # poll: uvicorn start-up
    commits: dict = {}
    lags: list[float] = []
    ready, counter = asyncio.Event(), [0]
    pool = await create_pool(url, min_size=writers, max_size=writers)
    team_id = await _team(pool, wanted) if as_users else None
    tokens = [mint_token(SECRET, sub=f"fan-{i}" if as_users else "dashboard",
                         role=USER_ROLE if as_users else SERVICE_ROLE, audience=settings.jwt_audience)
              for i in range(wanted)]
    base = f"http://127.0.0.1:{port}"
    clients = [asyncio.create_task(_subscriber(base, token, commits, lags, ready, counter, wanted))
               for token in tokens]
    try:
        async with asyncio.timeout(60):
            await ready.wait()
        await asyncio.sleep(0.5)  # streams past their first (empty) page
        connections = await _connections(url)
        until = time.monotonic() + seconds
        await asyncio.gather(*(_writer(EventStore(pool), until, writers / rate, commits, team_id)
                               for _ in range(writers)))
        await asyncio.sleep(2.0)  # the last changes reach the clients
        feed = await pool.fetchval("SELECT count(*) FROM vjm.job_changes")
    finally:
        for client in clients:
            client.cancel()
        for client in clients:
            with contextlib.suppress(BaseException):
                await client
        await pool.close()
        server.should_exit = True
        await serving
    ms = [1000 * lag for lag in lags]
    p99 = round(percentile(ms, 0.99), 2) if ms else None
    return {"benchmark": "fanout", "workload": "W6 SSE fan-out", "smoke": smoke,
            "subscriber_role": "user" if as_users else "service", "subscribers_wanted": wanted,
            "subscribers": counter[0], "db_connections": connections, "write_rate_per_s": rate,
            "seconds": seconds, "events": len(commits), "feed_changes": feed, "deliveries": len(ms),
            "deliveries_expected": feed * counter[0],
            "p50_ms": round(percentile(ms, 0.5), 2) if ms else None, "p99_ms": p99,
            "max_ms": round(max(ms), 2) if ms else None, "target_p99_ms": TARGET_P99_MS,
            "ratio_to_target": round(p99 / TARGET_P99_MS, 3) if p99 else None,
            "met": bool(p99 is not None and p99 < TARGET_P99_MS and counter[0] == wanted)}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    as_users = os.environ.get("VJM_BENCH_FANOUT_AS", "service") == "users"
    run_standalone(functools.partial(run, as_users=as_users), __doc__)


if __name__ == "__main__":
    main()
