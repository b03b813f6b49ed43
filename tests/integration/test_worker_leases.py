"""Leases and heartbeats, step 3 of issue 18: a killed or frozen worker loses its jobs within one lease
plus one scan; a heartbeating one keeps them however long they run; the zombie's late report is refused."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator

import pytest

from listeners import StuckDetector, StuckDetectorConfig
from statemachine import InvalidTransition
from store.leases import LeaseRenewal, expire_leases, renew_leases
from tests.support.waiting import eventually
from tests.support.workers import Spawn, ended, events_of, running_in_process, status_is, worker_spawner
from tests.support.workers import create_job_named as create
from videojobs import Settings, VideoJobManager, Worker, connect

SCAN = 0.2  # the stuck detector's interval in these tests


@pytest.fixture
async def manager(database_url: str) -> AsyncIterator[VideoJobManager]:
    """A manager whose stuck detector scans every SCAN seconds (the leases here last 1 s)."""
    async with connect(settings=Settings(database_url=database_url, stuck_interval_seconds=SCAN)) as opened:
        yield opened


@pytest.fixture
async def spawn_worker(database_url: str) -> AsyncIterator[Spawn]:
    async with worker_spawner(database_url) as spawn:
        yield spawn


def ended_logs(worker, job_id) -> list[dict]:
    """The worker's `worker_job_ended` log records of this job (its stderr is JSON lines)."""
    records = [json.loads(line) for line in worker.stderr.splitlines() if line.startswith("{")]
    return [r for r in records if r.get("event") == "worker_job_ended" and r.get("job_id") == str(job_id)]


async def test_a_killed_worker_loses_its_job_within_one_lease_and_one_scan(manager, spawn_worker) -> None:
    job = await create(manager, "zombie-60.mp4")
    first = await spawn_worker("--lease", "1")
    await first.line_with("started", job.job_id, 1)
    first.process.kill()
    killed = time.time()
    await eventually(lambda: status_is(manager, job.job_id, "queued"), within=10)
    time_out = (await events_of(manager, job.job_id))[-1]
    assert time_out.type == "time_out" and time_out.actor == "system:stuck_detector"
    assert time_out.occurred_at.timestamp() - killed < 1 + SCAN + 1.0  # one lease, one scan, and some slack
    assert time_out.data["lease_seconds"] == 1.0 and time_out.data["lease_expires_at"].endswith("Z")
    second = await spawn_worker("--lease", "1")
    await eventually(lambda: status_is(manager, job.job_id, "completed"), within=20)
    done = await manager.get_job_by_id(job.job_id)
    assert (done.attempt, done.output_paths) == (2, [f"/out/{job.job_id}/attempt2.mp4"])
    assert second.matching("started", job.job_id, 2)


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
    # Thawed, the zombie either learns from its heartbeat that the job is lost (and cancels its
    # handler), or its handler finishes first and its complete is refused by attempt fencing.
    await eventually(lambda: ended_logs(zombie, job.job_id), within=20)
    assert ended_logs(zombie, job.job_id)[0]["outcome"] in ("lost", "refused")
    completes = [e for e in await events_of(manager, job.job_id) if e.type == "complete"]
    assert [(e.attempt, e.actor) for e in completes] == [(2, rescuer.lines[0].split()[2].rstrip(":"))]
    with pytest.raises(InvalidTransition):  # attempt 1's report, whenever it comes, is refused
        await manager.complete_job(job.job_id, ["/late.mp4"], attempt=1)


async def test_a_heartbeating_job_running_five_leases_is_kept_and_completed_once(manager, spawn_worker) -> None:
    job = await create(manager, "beat-5.mp4")
    worker = await spawn_worker("--lease", "1")
    await worker.line_with("finished", job.job_id, within=30)
    await eventually(lambda: status_is(manager, job.job_id, "completed"), within=10)
    types = [e.type for e in await events_of(manager, job.job_id)]
    assert types == ["create", "start", "complete"]  # no time_out, and the heartbeats wrote no events


async def test_progress_and_extend_renew_the_lease_in_place(manager, pool) -> None:
    job = await create(manager, "ok.mp4")
    worker = Worker(manager=manager, lease_seconds=2, poll_interval=0.05)
    seen: list[tuple[float, object]] = []

    async def lease() -> tuple[float, object]:
        row = await pool.fetchrow("SELECT lease_seconds, renewed_at FROM vjm.leases WHERE job_id = $1", job.job_id)
        return row["lease_seconds"], row["renewed_at"]

    @worker.handler
    async def handler(job, ctx):
        seen.append(await lease())
        await ctx.extend(30)
        seen.append(await lease())
        await ctx.progress(percent=50, phase="encode")
        seen.append(await lease())
        return ["/out/a.mp4"]

    async with running_in_process(worker):
        result = await ended(worker, job.job_id)
    assert result.outcome == "completed"
    assert [s for s, _ in seen] == [2.0, 30.0, 30.0]
    assert seen[0][1] < seen[1][1] < seen[2][1]
    progress = [e for e in await events_of(manager, job.job_id) if e.type == "progress"][0]
    assert progress.data["phase"] == "encode"


async def test_a_renewal_and_a_time_out_never_both_win(pool, manager) -> None:
    """Heartbeat against time-out: whichever commits first decides, and the other sees it."""
    jobs = [await create(manager, "ok.mp4") for _ in range(2)]
    claimed = await manager.claim_jobs("w-race", 2, lease_seconds=0.5)
    await pool.execute("UPDATE vjm.leases SET expires_at = now() - interval '1 second'")
    early, late = claimed
    held = await renew_leases(pool, "w-race", [LeaseRenewal(early.job_id, early.attempt, 60)])
    assert set(held) == {early.job_id}  # renewed before the scan: kept
    expired = await expire_leases(pool, 10, "system:stuck_detector")
    assert [(e.job_id, e.to_state) for e in expired] == [(late.job_id, "queued")]
    assert await renew_leases(pool, "w-race", [LeaseRenewal(late.job_id, late.attempt, 60)]) == {}  # lost
    assert {j.job_id for j in jobs} == {early.job_id, late.job_id}


async def test_a_renewal_never_brings_a_deadline_closer(pool, manager) -> None:
    """ctx.extend(600) renews at once; a heartbeat still carrying the old 60 s that commits after it must not undo
    it. A longer renewal still moves the deadline, and the lease keeps the length of the deadline it has."""
    await create(manager, "ok.mp4")
    [attempt] = await manager.claim_jobs("w-extend", 1, lease_seconds=60)
    lease = (attempt.job_id, attempt.attempt)
    extended = (await manager.processors.renew_leases("w-extend", [(*lease, 600)]))[attempt.job_id]
    late = await manager.processors.renew_leases("w-extend", [(*lease, 60)])
    row = await pool.fetchrow("SELECT expires_at, lease_seconds FROM vjm.leases WHERE job_id = $1", attempt.job_id)
    assert late == {attempt.job_id: extended} and (row["expires_at"], row["lease_seconds"]) == (extended, 600)
    longer = await renew_leases(pool, "w-extend", [LeaseRenewal(*lease, 900)])
    assert longer[attempt.job_id] > extended
    assert await pool.fetchval("SELECT lease_seconds FROM vjm.leases WHERE job_id = $1", attempt.job_id) == 900


async def test_a_lease_that_ran_out_is_renewed_from_now_until_the_scan_takes_it(pool, manager) -> None:
    """A renewal that commits before the time-out keeps the job, from now on (not from the old deadline)."""
    await create(manager, "ok.mp4")
    [attempt] = await manager.claim_jobs("w-late", 1, lease_seconds=60)
    await pool.execute("UPDATE vjm.leases SET expires_at = now() - interval '1 hour'")
    [renewed] = (await renew_leases(pool, "w-late", [LeaseRenewal(attempt.job_id, attempt.attempt, 60)])).values()
    now = await pool.fetchval("SELECT clock_timestamp()")
    assert 50 < (renewed - now).total_seconds() <= 60
    assert await expire_leases(pool, 10, "system:stuck_detector") == []


async def test_the_idle_scan_leaves_a_leased_job_to_its_lease(pool, manager) -> None:
    await create(manager, "ok.mp4")
    [attempt] = await manager.claim_jobs("w-long", 1, lease_seconds=600)
    result = await StuckDetector(pool, StuckDetectorConfig(timeout=0)).run_once()
    assert result.reset == 0
    assert await status_is(manager, attempt.job_id, "processing")
