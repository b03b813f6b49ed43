"""The stuck-job detector: time_out through the event store, exactly once, fenced."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from listeners import StuckDetector, StuckDetectorConfig
from statemachine import InvalidTransition, StaleAttempt
from store import EventStore, prepare_event
from store.identity import PROCESSOR, init_role_connection
from store.queries import named_query
from tests.support.factories import create_job
from tests.support.projections import assert_read_model_is_fold

# timeout=0: every projected processing job counts as stuck, so the tests never wait for a clock.
NOW = StuckDetectorConfig(timeout=0)


async def _processing_jobs(store: EventStore, count: int, max_attempts: int = 3) -> list:
    jobs = [await create_job(store, max_attempts=max_attempts) for _ in range(count)]
    return [await store.append(prepare_event("start", {"worker_id": "slow"}, job_id=j.job_id)) for j in jobs]


async def test_two_detectors_reset_each_stuck_job_once(pool, store: EventStore, make_projector) -> None:
    started = await _processing_jobs(store, 12)
    projector = make_projector()
    await projector.run_once()
    one, two = StuckDetector(pool, NOW), StuckDetector(pool, NOW)
    first, second = await asyncio.gather(one.run_once(), two.run_once())
    assert first.found == second.found == 12
    assert first.reset + second.reset == 12
    assert first.skipped + second.skipped == 12
    counts = await pool.fetch("SELECT job_id, count(*) FROM vjm.job_events WHERE type = 'time_out' GROUP BY 1")
    assert sorted(n for _, n in counts) == [1] * 12
    assert {r["actor"] for r in await pool.fetch("SELECT actor FROM vjm.job_events WHERE type = 'time_out'")} == \
        {"system:stuck_detector"}
    # The worker that held attempt 1 reports late: refused, the job is not finished twice.
    late = started[0]
    with pytest.raises(InvalidTransition):
        await store.append(prepare_event("complete", {"output_paths": ["/late.mp4"]}, job_id=late.job_id,
                                         attempt=late.attempt))
    await store.append(prepare_event("start", {"worker_id": "fresh"}, job_id=late.job_id))
    with pytest.raises(StaleAttempt):
        await store.append(prepare_event("complete", {"output_paths": ["/late.mp4"]}, job_id=late.job_id,
                                         attempt=late.attempt))
    await projector.run_once()
    assert await pool.fetchval("SELECT count(*) FROM vjm.jobs WHERE status = 'queued'") == 11
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE type = 'complete'") == 0
    await assert_read_model_is_fold(projector.config.database_url)


async def test_exhausted_job_fails(pool, store: EventStore, make_projector) -> None:
    (started,) = await _processing_jobs(store, 1, max_attempts=1)
    projector = make_projector()
    await projector.run_once()
    result = await StuckDetector(pool, NOW).run_once()
    assert (result.found, result.failed, result.requeued) == (1, 1, 0)
    await projector.run_once()
    row = await pool.fetchrow("SELECT status, completed_at, error_message FROM vjm.jobs WHERE job_id = $1",
                              started.job_id)
    assert row["status"] == "failed" and row["completed_at"] is not None and "no activity" in row["error_message"]


async def test_recent_activity_is_not_stuck(pool, store: EventStore, make_projector) -> None:
    await _processing_jobs(store, 3)
    await make_projector().run_once()
    assert (await StuckDetector(pool, StuckDetectorConfig()).run_once()).found == 0  # default: 15 minutes


async def test_activity_the_projection_has_not_seen_yet_wins(pool, store: EventStore, make_projector) -> None:
    (started,) = await _processing_jobs(store, 1)
    await make_projector().run_once()
    await store.append(prepare_event("progress", {"percent": 5}, job_id=started.job_id, attempt=1))
    result = await StuckDetector(pool, NOW).run_once()
    assert (result.found, result.reset, result.skipped) == (1, 0, 1)  # the version guard refused the reset
    assert (await store.read_head(started.job_id)).type == "progress"


async def test_scan_uses_the_partial_index(pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        scan = named_query("job_get_stuck")
        plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + scan.sql, *scan.args({"timeout_seconds": 900.0,
                                                                                    "limit": 100}))
    assert "jobs_processing_idle" in json.dumps(plan)


async def test_the_scan_reads_only_jobs_idle_near_the_timeout(pool, store: EventStore, make_projector) -> None:
    """Processing jobs active within the timeout are not read at all: the scan's cost follows the stuck jobs, not
    every processing one (indexed by job id, it read and sorted 50,000 processing jobs at 1M: 259 ms)."""
    await _processing_jobs(store, 60)
    await make_projector().run_once()
    scan = named_query("job_get_stuck")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        explained = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + scan.sql,
                                        *scan.args({"timeout_seconds": 900.0, "limit": 100}))
    [plan] = json.loads(explained) if isinstance(explained, str) else explained
    scans = [node for node in _nodes(plan["Plan"]) if node.get("Relation Name") == "jobs"]
    assert scans, plan
    assert sum(node["Actual Rows"] + node.get("Rows Removed by Filter", 0) for node in scans) == 0  # 60 before


async def test_many_stuck_jobs_are_scanned_a_limit_at_a_time(pool, store: EventStore, make_projector) -> None:
    """With more stuck jobs than the limit, the scan reads about the limit's worth, in index order, instead of reading
    and sorting every stuck job (W5: 50,000 processing jobs idle past the timeout, 259 ms a scan)."""
    started = await _processing_jobs(store, 60)
    await make_projector().run_once()
    await pool.execute("UPDATE vjm.jobs SET last_activity_at = last_activity_at - make_interval(mins => (version * 7 + "
                       "ascii(job_id::text)) % 5) WHERE status = 'processing'")  # over several minutes, not in job order
    scan = named_query("job_get_stuck")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        explained = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + scan.sql,
                                        *scan.args({"timeout_seconds": 0.0, "limit": 10}))
        found = await conn.fetch(scan.sql, *scan.args({"timeout_seconds": 0.0, "limit": 10}))
        minutes = await conn.fetch("SELECT job_id, activity_minute FROM vjm.jobs WHERE status = 'processing'")
    [plan] = json.loads(explained) if isinstance(explained, str) else explained
    scans = [node for node in _nodes(plan["Plan"]) if node.get("Relation Name") == "jobs"]
    assert sum(node["Actual Rows"] + node.get("Rows Removed by Filter", 0) for node in scans) <= 10
    by_job = {r["job_id"]: r["activity_minute"] for r in minutes}
    assert len(by_job) == len(started) == 60 and len(found) == 10
    chosen = sorted(by_job[r["job_id"]] for r in found)
    assert chosen == sorted(by_job.values())[:10]  # the longest idle, to the minute


def _nodes(node: dict) -> list[dict]:
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]


async def test_start_and_stop_loop(pool, store: EventStore, make_projector) -> None:
    (started,) = await _processing_jobs(store, 1)
    await make_projector().run_once()
    detector = StuckDetector(pool, StuckDetectorConfig(timeout=0, interval=0.05))
    await detector.start()
    try:
        result = await detector.signals.ran.next(lambda result: result.reset >= 1)  # the loop's own pass
        assert (result.found, result.requeued) == (1, 1)
        assert (await store.read_head(started.job_id)).type == "time_out"
    finally:
        await detector.stop()
    assert not detector.running and detector.signals.stopped.count == 1


async def test_detector_runs_as_vjm_processor(database_url: str, pool, store: EventStore, make_projector) -> None:
    await _processing_jobs(store, 4)
    await make_projector().run_once()
    processor_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2,
                                               init=lambda conn: init_role_connection(conn, PROCESSOR))
    try:
        assert await processor_pool.fetchval("SELECT current_user") == PROCESSOR
        result = await StuckDetector(processor_pool, NOW).run_once()
    finally:
        await processor_pool.close()
    assert (result.found, result.reset) == (4, 4)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE type = 'time_out'") == 4
