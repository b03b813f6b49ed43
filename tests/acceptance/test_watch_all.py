"""`vjm watch --all`, the operator's terminal screen, run as an operator would: the real console script in a
subprocess (off a terminal: one `operator {json}` line per change of the summary), real Postgres, data written
through a VideoJobManager whose projector runs in this process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable

from store.workers import WorkerBeat
from tests.support.cli import avjm, clean_env, finish, first_line_with, spawn
from tests.support.factories import create_data
from videojobs import VideoJobManager

UPLOAD = create_data(original_filename="ops.mp4")


async def summary_where(process: subprocess.Popen, wanted: Callable[[dict], bool], within: float = 30) -> dict:
    """The first `operator {json}` line whose summary satisfies `wanted` (the screen's own output, read as it comes)."""
    def read() -> dict:
        seen = None
        for line in process.stdout:
            if line.startswith("operator "):
                seen = json.loads(line.removeprefix("operator "))
                if wanted(seen):
                    return seen
        raise AssertionError(f"no summary as wanted; the last: {seen}; stderr: {process.stderr.read()}")
    return await asyncio.wait_for(asyncio.to_thread(read), within)


async def test_the_operator_screen_shows_every_tenant_the_queue_workers_and_stuck_jobs(
        manager_with_listeners: VideoJobManager, database_url: str) -> None:
    manager = manager_with_listeners
    process = spawn("watch", "--all", "--interval", "0.3", "--database-url", database_url,
                    env=clean_env(VJM_STUCK_TIMEOUT_SECONDS="1"))
    try:
        await first_line_with(process, "the operator's screen")
        jobs = [await manager.create_job(user_id=user, **{**UPLOAD, "platform_target": platform})
                for user, platform in (("alice", "tiktok"), ("alice", "instagram"), ("bob", "tiktok"),
                                       ("carol", "youtube_shorts"))]
        done = await manager.start_processing(jobs[0].job_id, "w1")
        await manager.complete_job(jobs[0].job_id, ["/out/1.mp4"], 3.0, done.attempt, actor="w1")
        idle = await manager.start_processing(jobs[3].job_id, "w2")  # no lease: the stuck detector's to judge
        await manager.workers.beat(WorkerBeat(worker_id="encoder-1", host="box", pid=4242, concurrency=4, running=1,
                                              platforms=None, version="test", lease_seconds=0.5))
        stats = await manager.get_job_stats()
        expected = {"queued": stats.queued_jobs, "processing": stats.processing_jobs,
                    "completed": stats.completed_jobs, "failed": stats.failed_jobs,
                    "cancelled": stats.cancelled_jobs, "total": stats.total_jobs}
        seen = await summary_where(process, lambda s: s["jobs"] == expected and str(idle.job_id) in s["stuck"]
                                   and s["workers"].get("lost") == 1)
    finally:
        code, _, err = await finish(process, terminate=True)
    assert code == 0 and "Traceback" not in err
    assert expected == {"queued": 2, "processing": 1, "completed": 1, "failed": 0, "cancelled": 0, "total": 4}
    assert seen["queued_by_platform"] == {"tiktok": 1, "instagram": 1}
    assert seen["stuck"] == [str(idle.job_id)] and seen["events_behind"] == 0
    # the feed has a change per job per projected batch: every job at least once, the completion exactly once
    assert seen["per_minute"].get("completed") == 1 and sum(seen["per_minute"].values()) >= len(jobs)


async def test_the_operator_screen_refuses_a_tenant_filter(database_url: str) -> None:
    result = await avjm("watch", "--all", "--user", "alice", "--database-url", database_url)
    assert result.returncode == 2 and "--all shows every tenant" in result.stderr
    started = time.monotonic()
    bad = await avjm("watch", "--all", "--interval", "0", "--database-url", database_url)
    assert bad.returncode == 2 and "--interval" in bad.stderr and time.monotonic() - started < 60
