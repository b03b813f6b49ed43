"""Workers over HTTP, item 7 of issue 18: `vjm worker --api URL --token T` runs the same runtime against a
real `vjm up`, with no database connection of its own (its VJM_DATABASE_URL points nowhere).

Each test drives real processes: `vjm up` (API, projector, stuck detector scanning every SCAN s)
on the test's database, and `vjm worker --api` processes running tests.support.worker_handlers.
"""

from __future__ import annotations

import json
import signal
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import avjm
from tests.support.http_workers import http_worker_spawner, registry
from tests.support.served import vjm_up
from tests.support.waiting import eventually
from tests.support.workers import HANDLER, Spawn, events_of, status_is
from tests.support.workers import create_job_named as create
from videojobs.worker.errors import error_text

SCAN = 0.2  # vjm up's stuck detector interval here (the leases below last 1 s)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    async with vjm_up(database_url, tmp_path / "vjm-up.out", VJM_STUCK_INTERVAL_SECONDS=str(SCAN)) as url:
        yield url


@pytest.fixture
async def spawn_worker(api: str) -> AsyncIterator[Spawn]:
    async with http_worker_spawner(api) as spawn:
        yield spawn


def worker_id_of(worker) -> str:
    return worker.lines[0].split()[2].rstrip(":")


def logged(worker, event: str) -> list[dict]:
    records = [json.loads(line) for line in worker.stderr.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("event") == event]


async def test_a_job_is_completed_and_the_worker_is_registered(manager, api, spawn_worker) -> None:
    job = await create(manager, "progress-3.mp4")
    worker = await spawn_worker("--lease", "30")
    await eventually(lambda: status_is(manager, job.job_id, "completed"), within=20)
    done = await manager.get_job_by_id(job.job_id)
    assert done.output_paths == [f"/out/{job.job_id}/p.mp4"] and done.processing_time is not None
    events = await events_of(manager, job.job_id)
    assert [e.type for e in events] == ["create", "start", "progress", "progress", "progress", "complete"]
    assert {e.actor for e in events[1:]} == {worker_id_of(worker)}  # the worker, not the token's service name
    assert events[2].data["phase"] == "encode"
    row = (await registry(api))[worker_id_of(worker)]
    assert (row["state"], row["concurrency"], row["lease_seconds"]) == ("running", 1, 30.0)
    worker.send(signal.SIGTERM)
    assert await worker.wait() == 0
    assert (await registry(api))[worker_id_of(worker)]["state"] == "stopped"


async def test_an_exception_fails_the_job_with_its_error_text(manager, spawn_worker) -> None:
    job = await create(manager, "boom.mp4")
    await spawn_worker()
    await eventually(lambda: status_is(manager, job.job_id, "failed"), within=20)
    failed = await manager.get_job_by_id(job.job_id)
    assert failed.error_message == error_text(RuntimeError("encoder exploded\x00 " + "x" * 5000))


async def test_a_retry_is_requeued_and_not_claimed_before_its_delay(manager, spawn_worker) -> None:
    job = await create(manager, "retry-1.5.mp4", max_attempts=2)
    worker = await spawn_worker()
    await worker.line_with("started", job.job_id, 1)
    await eventually(lambda: status_is(manager, job.job_id, "failed"), within=20)  # the second attempt retries too
    first, second = (float(line.split()[4]) for line in worker.matching("started", job.job_id))
    assert second - first >= 1.5
    requeue = next(e for e in await events_of(manager, job.job_id) if e.type == "requeue")
    assert requeue.data["retry_after"] == 1.5 and requeue.actor == worker_id_of(worker)


async def test_a_cancel_reaches_the_handler_within_a_second(manager, spawn_worker) -> None:
    jobs = [await create(manager, "hang.mp4") for _ in range(3)]
    worker = await spawn_worker("--concurrency", "3", "--lease", "60")  # the keeper's renewal: every 20 s
    for job in jobs:
        await worker.line_with("started", job.job_id, 1)
    for job in jobs:
        cancelled_at = time.time()
        await manager.cancel_job(job.job_id, reason="user changed their mind")
        line = await worker.line_with("cancelled", job.job_id, 1, within=5)
        latency = float(line.split()[3]) - cancelled_at
        print(f"cancel reached the handler over HTTP in {latency * 1000:.0f} ms")
        assert latency < 1.0
    await eventually(lambda: {r["job_id"] for r in logged(worker, "worker_job_lost")}
                     == {str(job.job_id) for job in jobs}, within=5)
    for job in jobs:
        assert [e.type for e in await events_of(manager, job.job_id)] == ["create", "start", "cancel"]


async def test_sigterm_lets_a_job_finish_and_releases_one_past_the_timeout(manager, spawn_worker) -> None:
    quick, stuck = await create(manager, "slow-1.mp4"), await create(manager, "hang.mp4", max_attempts=2)
    worker = await spawn_worker("--concurrency", "2", "--shutdown-timeout", "2")
    await worker.line_with("started", quick.job_id)
    await worker.line_with("started", stuck.job_id)
    worker.send(signal.SIGTERM)
    await worker.line_with("cancelled", stuck.job_id)
    assert await worker.wait() == 0
    assert (await manager.get_job_by_id(quick.job_id)).status == "completed"
    released = await manager.get_job_by_id(stuck.job_id)
    assert (released.status, released.attempt, released.attempts_left) == ("queued", 1, 2)
    release = (await events_of(manager, stuck.job_id))[-1]
    assert (release.type, release.data, release.actor) == ("release", {"reason": "worker shutting down"},
                                                           worker_id_of(worker))


async def test_a_killed_worker_loses_its_job_to_the_lease_and_another_reruns_it(manager, spawn_worker) -> None:
    job = await create(manager, "zombie-60.mp4")
    first = await spawn_worker("--lease", "1")
    await first.line_with("started", job.job_id, 1)
    first.process.kill()
    killed = time.time()
    await eventually(lambda: status_is(manager, job.job_id, "queued"), within=10)
    time_out = (await events_of(manager, job.job_id))[-1]
    assert time_out.type == "time_out" and time_out.data["lease_seconds"] == 1.0
    assert time_out.occurred_at.timestamp() - killed < 1 + SCAN + 1.0  # one lease, one scan, and some slack
    second = await spawn_worker("--lease", "1")
    await eventually(lambda: status_is(manager, job.job_id, "completed"), within=20)
    done = await manager.get_job_by_id(job.job_id)
    assert (done.attempt, done.output_paths) == (2, [f"/out/{job.job_id}/attempt2.mp4"])
    assert second.matching("started", job.job_id, 2)


async def test_an_idle_worker_is_woken_by_the_long_poll(manager, spawn_worker) -> None:
    worker = await spawn_worker()
    await eventually(lambda: logged(worker, "worker_started"), within=10)
    delays = []
    for _ in range(5):
        created = time.time()
        job = await create(manager, "ok.mp4")
        line = await worker.line_with("started", job.job_id, 1, within=10)
        delays.append(float(line.split()[4]) - created)
        await eventually(lambda job_id=job.job_id: status_is(manager, job_id, "completed"), within=10)
    print(f"create to start over HTTP: {[round(d * 1000) for d in delays]} ms")
    assert statistics.median(delays) < 0.5  # woken by the change feed: the held claim's own recheck is 1 s


async def one_claim_held(api: str) -> bool:
    """Whether `vjm up` holds exactly one claim open now (its /metrics gauge)."""
    async with httpx.AsyncClient(base_url=api) as client:
        metrics = (await client.get("/metrics")).text
    return 'vjm_worker_held_calls{call="claim"} 1.0' in metrics.splitlines()


async def test_a_worker_of_two_platforms_long_polls_and_a_job_of_either_wakes_it(manager, api, spawn_worker) -> None:
    worker = await spawn_worker("--platform", "tiktok", "--platform", "instagram")
    delays = []
    for platform in ("instagram", "tiktok", "instagram", "tiktok"):
        await eventually(lambda: one_claim_held(api), within=10)  # its claim waits on the server: no polling
        created = time.time()
        job = await create(manager, "ok.mp4", platform_target=platform)
        line = await worker.line_with("started", job.job_id, 1, within=10)
        delays.append(float(line.split()[4]) - created)
        await eventually(lambda job_id=job.job_id: status_is(manager, job_id, "completed"), within=10)
    print(f"create to start over HTTP, two platforms: {[round(d * 1000) for d in delays]} ms")
    assert statistics.median(delays) < 0.5  # woken by the change feed: the held claim's own recheck is 1 s
    other = await create(manager, "ok.mp4", platform_target="youtube_shorts")
    mine = await create(manager, "ok.mp4", platform_target="tiktok")
    await worker.line_with("started", mine.job_id, 1, within=10)  # claims are oldest first: the other was passed over
    assert not worker.matching("started", other.job_id)
    assert (await manager.get_job_by_id(other.job_id)).status == "queued"


async def test_a_frozen_worker_loses_its_job_and_its_late_report_is_refused(manager, spawn_worker) -> None:
    job = await create(manager, "zombie-2.mp4")
    zombie = await spawn_worker("--lease", "1")
    await zombie.line_with("started", job.job_id, 1)
    zombie.send(signal.SIGSTOP)
    try:
        await eventually(lambda: status_is(manager, job.job_id, "queued"), within=10)
        rescuer = await spawn_worker("--lease", "1")
        await eventually(lambda: status_is(manager, job.job_id, "completed"), within=20)
    finally:
        zombie.send(signal.SIGCONT)
    # Thawed, the zombie learns from its heartbeat that the job is lost, or its complete is refused
    # (the API's 409 is the same refusal as the database's: the runtime reports it as such).
    await eventually(lambda: [r for r in logged(zombie, "worker_job_ended") if r["job_id"] == str(job.job_id)],
                     within=20)
    ended = next(r for r in logged(zombie, "worker_job_ended") if r["job_id"] == str(job.job_id))
    assert ended["outcome"] in ("lost", "refused")
    completes = [e for e in await events_of(manager, job.job_id) if e.type == "complete"]
    assert [(e.attempt, e.actor) for e in completes] == [(2, worker_id_of(rescuer))]


async def test_the_worker_needs_a_token_and_no_database(api) -> None:
    no_token = await avjm("worker", HANDLER, "--api", api, "--token", "")
    assert no_token.returncode != 0 and "--api needs a service_role token" in no_token.stdout + no_token.stderr
    both = await avjm("worker", HANDLER, "--api", api, "--token", "t", "--database-url", "postgresql://x@127.0.0.1:1/x")
    assert both.returncode != 0 and "not both" in both.stdout + both.stderr


async def test_a_heartbeating_job_running_five_leases_is_kept_and_completed_once(manager, spawn_worker) -> None:
    job = await create(manager, "beat-5.mp4")
    worker = await spawn_worker("--lease", "1")  # the stuck detector scans every SCAN s meanwhile
    await worker.line_with("finished", job.job_id, 1, within=20)
    await eventually(lambda: status_is(manager, job.job_id, "completed"), within=10)
    assert [e.type for e in await events_of(manager, job.job_id)] == ["create", "start", "complete"]
