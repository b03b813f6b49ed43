"""Per-platform counters (vjm.job_stats_platform): kept by the projector, equal to a recount, verified, rebuilt."""

from __future__ import annotations

import json

from store.jobs import StatsScope, get_stats_breakdown
from store.projections import rebuild_projections, verify_projections
from store.queries import named_query
from tests.support.factories import create_job
from tests.support.projections import assert_read_model_is_fold
from tests.support.workloads import project_workloads_in_small_batches

PLATFORM_STATS = "SELECT * FROM vjm.job_stats_platform ORDER BY scope, scope_id, platform_target"
COUNTERS = ("total_jobs", "queued_jobs", "processing_jobs", "completed_jobs", "failed_jobs", "cancelled_jobs")


async def _recount(pool) -> dict:
    recount: dict = {}
    for job in await pool.fetch("SELECT * FROM vjm.jobs"):
        scopes = [("user", job["user_id"])] + ([("team", str(job["team_id"])),
                                                 ("member", f"{job['team_id']}:{job['user_id']}")]
                                                if job["team_id"] else [])
        for scope, scope_id in scopes:
            counts = recount.setdefault((scope, scope_id, job["platform_target"]), dict.fromkeys(COUNTERS, 0))
            counts["total_jobs"] += 1
            counts[f"{job['status']}_jobs"] += 1
    return recount


async def test_platform_counters_equal_a_recount_after_a_random_workload(database_url: str, pool, workload,
                                                                        make_projector) -> None:
    events = await project_workloads_in_small_batches(make_projector, workload, first_seed=20)
    kinds = {e.type for e in events}
    assert {"update_metadata", "delete", "retry"} <= kinds
    created = {e.job_id: e.data["platform_target"] for e in events if e.type == "create"}
    moved = {e.job_id for e in events
             if e.type == "update_metadata" and e.data.get("platform_target") not in (None, created[e.job_id])}
    assert moved, "the workload should move some jobs to another platform"

    live = {(r["scope"], r["scope_id"], r["platform_target"]): {c: r[c] for c in COUNTERS}
            for r in await pool.fetch(PLATFORM_STATS)}
    assert live == await _recount(pool)
    assert {r["platform_target"] for r in await pool.fetch(PLATFORM_STATS)} >= {"tiktok", "instagram"}
    # Per scope the platforms add up to the scope's counters.
    for stats in await pool.fetch("SELECT * FROM vjm.job_stats"):
        parts = [v for k, v in live.items() if k[:2] == (stats["scope"], stats["scope_id"])]
        assert {c: sum(p[c] for p in parts) for c in COUNTERS} == {c: stats[c] for c in COUNTERS}
    await assert_read_model_is_fold(database_url)

    # The read side returns the same breakdown (summed over users when no scope is given).
    user = next(k for k in live if k[0] == "user")
    rows = (await get_stats_breakdown(pool, StatsScope.one("user", user[1]), 30)).platforms
    assert {r.platform_target: r.total_jobs for r in rows} == {k[2]: v["total_jobs"] for k, v in live.items()
                                                                 if k[:2] == user[:2]}
    everything: dict = {}
    for key, counts in live.items():
        if key[0] == "user":
            everything[key[2]] = everything.get(key[2], 0) + counts["total_jobs"]
    assert {r.platform_target: r.total_jobs for r in (await get_stats_breakdown(pool, StatsScope.every_user(), 30)).platforms} == everything

    result = await rebuild_projections(database_url)
    assert result.changed["job_stats_platform"] == 0


async def test_verify_reports_a_tampered_platform_counter_and_rebuild_repairs_it(database_url: str, pool, workload,
                                                                                 make_projector) -> None:
    await project_workloads_in_small_batches(make_projector, workload, rounds=2, first_seed=20)
    assert (await verify_projections(database_url)).ok
    key = await pool.fetchrow("SELECT scope, scope_id, platform_target FROM vjm.job_stats_platform "
                              "ORDER BY scope, scope_id, platform_target LIMIT 1")
    await pool.execute("UPDATE vjm.job_stats_platform SET completed_jobs = completed_jobs + 1 "
                       "WHERE scope = $1 AND scope_id = $2 AND platform_target = $3", *key)
    result = await verify_projections(database_url)
    assert not result.ok and result.exit_code == 1
    by_table = {d.table: d for d in result.differences}
    wanted = ":".join(key)
    assert by_table["job_stats_platform"].key == wanted and by_table["job_stats_platform"].kind == "different"
    assert by_table["job_stats_platform"].columns == ("completed_jobs",)
    assert by_table["job_stats_platform_recount"].key == wanted
    assert set(by_table) == {"job_stats_platform", "job_stats_platform_recount"}
    repaired = await rebuild_projections(database_url)
    assert repaired.changed["job_stats_platform"] == 1
    assert (await verify_projections(database_url)).ok


async def test_a_missing_platform_row_is_reported_and_restored(database_url: str, pool, workload,
                                                               make_projector) -> None:
    await project_workloads_in_small_batches(make_projector, workload, rounds=1, first_seed=20)
    await pool.execute("DELETE FROM vjm.job_stats_platform WHERE scope = 'team'")
    result = await verify_projections(database_url)
    kinds = {(d.table, d.kind) for d in result.differences}
    assert ("job_stats_platform", "missing") in kinds and ("job_stats_platform_recount", "missing") in kinds
    await rebuild_projections(database_url)
    assert (await verify_projections(database_url)).ok


async def test_platform_breakdown_reads_the_counters_not_the_jobs(pool) -> None:
    query = named_query("job_stats_get")
    args = query.args(StatsScope.one("user", "u1").params() | {"days": 30})
    plan = "\n".join(r[0] for r in await pool.fetch("EXPLAIN " + query.sql, *args))
    assert "job_stats_platform" in plan and "vjm.jobs" not in plan and " on jobs" not in plan


async def test_the_stats_statement_keeps_one_plan_for_totals_and_breakdowns(pool, store, make_projector) -> None:
    """Page totals ask job_stats_get without days, get_job_stats with: planned for either, the statement must cost the
    same, so that one connection keeps one generic plan for both. (When a NULL :days folded the breakdowns away, the
    plans made for NULL looked cheaper than the generic one, and the server planned the statement again at every
    call: 0.6 of its 0.9 ms at W5's 1M jobs.)"""
    for i in range(30):
        await create_job(store, user_id=f"u{i % 10}", platform_target=("tiktok", "instagram", "youtube_shorts")[i % 3])
    await make_projector().run_once()
    await pool.execute("ANALYZE vjm.job_stats, vjm.job_stats_platform, vjm.job_stats_daily")
    query = named_query("job_stats_get")
    async with pool.acquire() as conn:
        costs = set()
        for days in (None, 30):  # planned for these values (a custom plan), as the plan cache's first five are
            plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + query.sql,
                                       *query.args(StatsScope.one("user", "u1").params() | {"days": days}))
            costs.add((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Total Cost"])
        statement = await conn.prepare(query.sql)
        for i in range(20):
            await statement.fetch(*query.args(StatsScope.one("user", f"u{i}").params() | {"days": 30 if i % 2 else None}))
        plans = await conn.fetchrow("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1",
                                    statement.get_name())
    assert len(costs) == 1, costs
    assert plans["custom_plans"] <= 5 and plans["generic_plans"] >= 15, dict(plans)
