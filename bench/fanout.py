"""W6: fan-out of job changes to SSE subscribers while writes run: commit-to-client latency.

The HTTP API (`videojobs.http.create_app`, projector in-process, uvicorn on loopback) serves
`GET /api/v1/events/stream` to `subscribers` httpx clients with a service-role token (a
dashboard). Writers append transitions through `EventStore.append` at a fixed pace; each
append's return is its commit time. A subscriber receiving a `job_change` for (job_id, version)
records arrival - commit of that event (changes of one job coalesced into one batch are
measured at the version they carry). p50/p99 over all subscribers; target p99 < 250 ms.

Each SSE stream holds its own database connection (listeners.JobChangeSubscription LISTENs
on a dedicated connection), so the number of subscribers is capped by the server's free
connections; the result says how many were connected.

`python -m bench.fanout [--smoke]` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import asyncpg
import httpx
import uvicorn

from store import EventStore, create_pool, prepare_event
from videojobs import Settings
from videojobs.http import HttpOptions, create_app
from videojobs.http.auth import SERVICE_ROLE, mint_token

from .common import percentile, run_standalone
from .projection_lag import DATA

SECRET = "bench-secret-0123456789-0123456789"
TARGET_P99_MS = 250.0
RESERVE = 30  # connections left for the app's pools, projector, writers and other sessions


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


async def _writer(store: EventStore, until: float, interval: float, commits: dict) -> None:
    job_id, step, next_at = None, 0, time.monotonic()
    cycle = ("create", "start", "progress", "complete")
    while time.monotonic() < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        trigger = cycle[step % 4]
        event = await store.append(prepare_event(trigger, DATA[trigger], job_id=job_id, user_id="fan",
                                                 actor="bench"))
        commits[(str(event.job_id), event.version)] = time.monotonic()
        job_id = None if trigger == "complete" else event.job_id
        step += 1


async def _capacity(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity")
    finally:
        await conn.close()


async def run(url: str, smoke: bool) -> dict:
    """p50/p99 commit-to-client latency with `subscribers` SSE clients and paced writers."""
    wanted, seconds, rate, writers = (10, 3.0, 100.0, 2) if smoke else (100, 10.0, 200.0, 4)
    subscribers = max(1, min(wanted, await _capacity(url) - RESERVE))
    settings = Settings(database_url=url, jwt_secret=SECRET, pool_size=5)
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
    token = mint_token(SECRET, sub="dashboard", role=SERVICE_ROLE, audience=settings.jwt_audience)
    base = f"http://127.0.0.1:{port}"
    clients = [asyncio.create_task(_subscriber(base, token, commits, lags, ready, counter, subscribers))
               for _ in range(subscribers)]
    pool = await create_pool(url, min_size=writers, max_size=writers)
    try:
        async with asyncio.timeout(60):
            await ready.wait()
        await asyncio.sleep(0.5)  # streams past their first (empty) page
        until = time.monotonic() + seconds
        await asyncio.gather(*(_writer(EventStore(pool), until, writers / rate, commits) for _ in range(writers)))
        await asyncio.sleep(2.0)  # the last changes reach the clients
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
    return {"benchmark": "fanout", "workload": "W6 SSE fan-out", "smoke": smoke, "subscribers_wanted": wanted,
            "subscribers": subscribers, "write_rate_per_s": rate, "seconds": seconds, "events": len(commits),
            "deliveries": len(ms), "p50_ms": round(percentile(ms, 0.5), 2) if ms else None, "p99_ms": p99,
            "max_ms": round(max(ms), 2) if ms else None, "target_p99_ms": TARGET_P99_MS,
            "ratio_to_target": round(p99 / TARGET_P99_MS, 3) if p99 else None,
            "met": bool(p99 is not None and p99 < TARGET_P99_MS and subscribers == wanted)}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
