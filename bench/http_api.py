"""HTTP API latency: create + get over HTTP (uvicorn on loopback, httpx) vs the manager called directly.

One operation is POST /api/v1/process then GET /api/v1/jobs/{id}, as an end user
(so every request runs in an RLS transaction), measured at 1 and 16 concurrent
clients; the same operation through `manager.as_user(...)` in the same process
gives the floor, and the difference is the HTTP layer's overhead.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

import httpx
import uvicorn

from videojobs import Settings, VideoJobManager
from videojobs.http import create_app
from videojobs.http.auth import mint_token

from .common import run_standalone

SECRET = "bench-secret-0123456789-0123456789"
JOB = {"original_filename": "clip.mp4", "original_filesize": 10_485_760, "clip_count": 5,
       "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3)}


async def _http_client(url: str, sub: str, ops: int, samples: list[float]) -> None:
    headers = {"Authorization": f"Bearer {mint_token(SECRET, sub=sub)}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(ops):
            started = time.perf_counter()
            created = await client.post("/api/v1/process", json=JOB)
            got = await client.get(f"/api/v1/jobs/{created.json()['job_id']}")
            samples.append(time.perf_counter() - started)
            assert created.status_code == 201 and got.status_code == 200, (created.text, got.text)


async def _direct_client(manager: VideoJobManager, sub: str, ops: int, samples: list[float]) -> None:
    user = manager.as_user(sub)
    for _ in range(ops):
        started = time.perf_counter()
        job = await user.create_job(user_id=sub, **JOB)
        await user.get_job_by_id(job.job_id)
        samples.append(time.perf_counter() - started)


async def _measure(clients: int, ops: int, run_one) -> dict:
    samples: list[float] = []
    per_client = max(1, ops // clients)
    started = time.perf_counter()
    await asyncio.gather(*(run_one(f"bench-user-{i}", per_client, samples) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return {**_summary(samples), "ops": len(samples), "ops_per_s": round(len(samples) / elapsed, 1)}


async def run(url: str, smoke: bool) -> dict:
    """p50/p99 of create+get over HTTP and directly, at 1 and 16 clients, on the database at `url`."""
    ops = {1: 100, 16: 320} if smoke else {1: 1000, 16: 4000}
    settings = Settings(database_url=url, jwt_secret=SECRET, pool_size=20)
    app = create_app(settings=settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)  # poll: uvicorn start-up
    base = f"http://127.0.0.1:{port}"
    manager = app.state.vjm.manager
    rows = []
    try:
        for clients, count in ops.items():
            await _measure(clients, max(clients, count // 10), lambda s, n, out: _http_client(base, s, n, out))
            http = await _measure(clients, count, lambda s, n, out: _http_client(base, s, n, out))
            direct = await _measure(clients, count, lambda s, n, out: _direct_client(manager, s, n, out))
            rows.append({"clients": clients, "http": http, "direct": direct,
                         "overhead_p50_ms": round(http["p50_ms"] - direct["p50_ms"], 3),
                         "overhead_p99_ms": round(http["p99_ms"] - direct["p99_ms"], 3),
                         "ratio_p50": round(http["p50_ms"] / direct["p50_ms"], 2)})
    finally:
        server.should_exit = True
        await task
    return {"benchmark": "http_api", "workload": "create + get as an end user", "smoke": smoke, "rows": rows}


def main() -> None:
    """Entry point: this workload alone, results as JSON on stdout."""
    run_standalone(run, __doc__)


if __name__ == "__main__":
    main()
