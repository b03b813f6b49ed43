"""Rebuild and verify: replay == live, stats == recount, damage is found and repaired."""

from __future__ import annotations

import asyncio

from store.projections import rebuild_projections, verify_projections
from tests.support.projections import assert_read_model_is_fold
from tests.support.workloads import project_workloads_in_small_batches

ROWS = "SELECT * FROM vjm.jobs ORDER BY job_id"
STATS = "SELECT * FROM vjm.job_stats ORDER BY scope, scope_id"
DAILY = "SELECT * FROM vjm.job_stats_daily ORDER BY scope, scope_id, day"


async def _snapshot(pool) -> tuple:
    return tuple([[dict(r) for r in await pool.fetch(q)] for q in (ROWS, STATS, DAILY)])


async def test_rebuild_gives_rows_identical_to_live(database_url: str, pool, workload, make_projector) -> None:
    events = await project_workloads_in_small_batches(make_projector, workload, first_seed=10)
    live = await _snapshot(pool)
    assert live[0] and live[1]
    result = await rebuild_projections(database_url)
    assert result.events == len(events) and result.jobs == len(live[0])
    assert result.changed == {"jobs": 0, "job_stats": 0, "job_stats_platform": 0, "job_stats_daily": 0,
                              "transition_counts": 0}
    assert await _snapshot(pool) == live


async def test_stats_equal_a_recount_after_a_random_workload(database_url: str, pool, workload,
                                                             make_projector) -> None:
    await project_workloads_in_small_batches(make_projector, workload, rounds=3, first_seed=10)
    recount: dict = {}
    for job in await pool.fetch("SELECT * FROM vjm.jobs"):
        scopes = [("user", job["user_id"])] + ([("team", str(job["team_id"])),
                                                 ("member", f"{job['team_id']}:{job['user_id']}")]
                                                if job["team_id"] else [])
        for key in scopes:
            counts = recount.setdefault(key, {"total_jobs": 0, "timed_jobs": 0, "total_processing_ms": 0})
            counts["total_jobs"] += 1
            counts[f"{job['status']}_jobs"] = counts.get(f"{job['status']}_jobs", 0) + 1
            if job["processing_time"] is not None:
                counts["timed_jobs"] += 1
                counts["total_processing_ms"] += round(job["processing_time"] * 1000)
    stats = {(r["scope"], r["scope_id"]): dict(r) for r in await pool.fetch(STATS)}
    assert set(stats) == set(recount)
    for key, counts in recount.items():
        assert {k: stats[key][k] for k in counts} == counts
        assert sum(stats[key][f"{s}_jobs"] for s in ("queued", "processing", "completed", "failed", "cancelled")) \
            == stats[key]["total_jobs"]
    await assert_read_model_is_fold(database_url)


async def test_verify_reports_damage_and_rebuild_repairs_it(database_url: str, pool, workload,
                                                            make_projector) -> None:
    await project_workloads_in_small_batches(make_projector, workload, rounds=2, first_seed=10)
    victim = await pool.fetchval("SELECT job_id FROM vjm.jobs ORDER BY job_id LIMIT 1")
    await pool.execute("UPDATE vjm.jobs SET clip_count = clip_count + 1 WHERE job_id = $1", victim)
    await pool.execute("DELETE FROM vjm.job_stats WHERE scope = 'team'")
    await pool.execute("UPDATE vjm.job_stats_daily SET processing_ms = processing_ms + 1")
    await pool.execute("UPDATE vjm.transition_counts SET events = events + 7 WHERE type = 'start'")
    await pool.execute("DELETE FROM vjm.transition_counts WHERE type = 'complete'")
    result = await verify_projections(database_url)
    assert not result.ok and result.exit_code == 1
    by_table = {d.table: d for d in result.differences}
    assert by_table["jobs"].key == str(victim) and by_table["jobs"].columns == ("clip_count",)
    assert by_table["job_stats"].kind == "missing" and by_table["job_stats_recount"].kind == "missing"
    assert "job_stats_daily" in by_table
    counts = {d.key: d.kind for d in result.differences if d.table == "transition_counts"}
    assert counts == {"transition_counts:start": "different", "transition_counts:complete": "missing"}
    repaired = await rebuild_projections(database_url)
    assert repaired.changed["jobs"] == 1 and repaired.changed["job_stats"] >= 1
    assert repaired.changed["transition_counts"] == 2
    assert (await verify_projections(database_url)).ok
    # The counters are the log's events by type.
    expected = {r["type"]: r["n"] for r in await pool.fetch("SELECT type, count(*) AS n FROM vjm.job_events GROUP BY type")}
    assert {r["type"]: r["events"] for r in await pool.fetch("SELECT * FROM vjm.transition_counts")} == expected


async def test_rebuild_concurrent_with_apply_and_reads_is_safe(database_url: str, pool, workload,
                                                          make_projector) -> None:
    projector = make_projector()
    await workload(jobs=30, seed=2)
    await projector.run_once()
    more = await workload(jobs=10, seed=3)
    rebuild = asyncio.create_task(rebuild_projections(database_url))
    applied, reads = await asyncio.gather(projector.run_once(), pool.fetchval("SELECT count(*) FROM vjm.jobs"))
    await rebuild
    assert applied.events == len(more) and reads > 0
    await assert_read_model_is_fold(database_url)


async def test_rebuild_and_verify_on_an_empty_log(database_url: str) -> None:
    assert (await rebuild_projections(database_url)).events == 0
    assert (await verify_projections(database_url)).ok
