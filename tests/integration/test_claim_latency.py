"""Issue 19: the stats say how long jobs waited (claim latency, p50 and p95 per platform, from the events).

Every expected value is computed in Python from the stored events (tests.support.claim_waits), apart
from the SQL; the waits themselves are whatever the database clock made them.
"""

from __future__ import annotations

import datetime as dt
import re

import asyncpg
import pytest

from tests.support.claim_waits import ALL_EVENTS, as_table, assert_same_latency, latency, waits
from tests.support.factories import create_data
from tests.support.waiting import eventually
from videojobs import AccessDenied, ValidationError, VideoJobManager


def job(platform: str = "tiktok", **overrides) -> dict:
    return create_data(platform_target=platform, **overrides)


async def expected(pool, since=None, keep=lambda e: True) -> dict:
    return latency(waits(await pool.fetch(ALL_EVENTS), since, keep))


async def claim_one(manager: VideoJobManager, job_id) -> int:
    """Claim until `job_id` is started (it may be held back until its not-before); its attempt."""
    claimed: list = []

    async def started() -> bool:
        claimed.extend(await manager.claim_jobs("w", limit=10))
        return any(a.job_id == job_id for a in claimed)
    await eventually(started, within=15, what=f"job {job_id} claimed")
    return next(a.attempt for a in claimed if a.job_id == job_id)


async def stream(pool, job_id) -> list:
    return await pool.fetch("SELECT * FROM vjm.job_events WHERE job_id = $1 ORDER BY version", job_id)


def seconds(later: dt.datetime, earlier: dt.datetime) -> float:
    return (later - earlier).total_seconds()


async def test_per_platform_p50_p95_and_max_equal_a_computation_from_the_events(manager: VideoJobManager,
                                                                               pool) -> None:
    for platform, count in (("tiktok", 7), ("instagram", 4), ("youtube_shorts", 2)):
        for _ in range(count):
            await manager.create_job(user_id="u1", **job(platform))
    await manager.claim_jobs("w", limit=5)
    for _ in range(3):
        await manager.create_job(user_id="u2", **job("instagram"))
    while await manager.claim_jobs("w", limit=3):
        pass
    got = as_table(await manager.get_claim_latency(hours=1))
    want = await expected(pool)
    assert {p: r[0] for p, r in want.items()} == {"tiktok": 7, "instagram": 7, "youtube_shorts": 2}
    assert_same_latency(got, want)
    assert got["tiktok"][1] < got["tiktok"][2] <= got["tiktok"][3]  # distinct waits: the percentiles interpolate
    assert list(got) == sorted(got)  # one row per platform, by name
    assert await manager.get_claim_latency() == await manager.stats.get_claim_latency(hours=24)


async def test_a_retried_jobs_second_wait_counts_from_its_retry(manager: VideoJobManager, pool) -> None:
    made = await manager.create_job(user_id="retrier", **job())
    first = await claim_one(manager, made.job_id)
    await manager.fail_job(made.job_id, "bad frame", first, actor="w")
    await manager.retry_job(made.job_id)
    await claim_one(manager, made.job_id)
    create, start1, _, retry, start2 = await stream(pool, made.job_id)
    assert (retry["type"], start2["type"]) == ("retry", "start")
    w1 = seconds(start1["occurred_at"], create["occurred_at"])
    w2 = seconds(start2["occurred_at"], retry["occurred_at"])
    [row] = await manager.get_claim_latency(hours=1, user_id="retrier")
    assert (row.platform_target, row.claims) == ("tiktok", 2)
    assert row.p50_seconds == pytest.approx((w1 + w2) / 2, abs=1e-6)
    assert row.max_seconds == pytest.approx(max(w1, w2), abs=1e-6)
    assert row.max_seconds < seconds(start2["occurred_at"], create["occurred_at"])  # not from the create


async def test_a_requeued_job_waits_from_its_retry_after(manager: VideoJobManager, pool) -> None:
    made = await manager.create_job(user_id="requeuer", **job())
    attempt = await claim_one(manager, made.job_id)
    await manager.processors.requeue_job(made.job_id, attempt, error="busy", retry_after=0.3)
    await claim_one(manager, made.job_id)
    create, start1, requeue, start2 = await stream(pool, made.job_id)
    assert requeue["type"] == "requeue"
    held_until = requeue["occurred_at"] + dt.timedelta(seconds=0.3)
    w1, w2 = seconds(start1["occurred_at"], create["occurred_at"]), seconds(start2["occurred_at"], held_until)
    [row] = await manager.get_claim_latency(hours=1, user_id="requeuer")
    assert row.claims == 2 and w2 >= 0
    assert row.p50_seconds == pytest.approx((w1 + w2) / 2, abs=1e-6)
    assert row.max_seconds == pytest.approx(max(w1, w2), abs=1e-6)
    assert row.max_seconds < seconds(start2["occurred_at"], requeue["occurred_at"])  # not from the requeue


async def test_a_run_at_jobs_wait_counts_from_its_run_at_not_from_its_create(manager: VideoJobManager,
                                                                             pool) -> None:
    db_now = await pool.fetchval("SELECT now()")
    later = await manager.create_job(user_id="sched", **job(), run_at=db_now + dt.timedelta(seconds=0.5))
    await claim_one(manager, later.job_id)
    create, start = await stream(pool, later.job_id)
    run_at = dt.datetime.fromisoformat(create["data"]["run_at"])
    [row] = await manager.get_claim_latency(hours=1, user_id="sched")
    assert row.claims == 1 and row.p50_seconds == pytest.approx(seconds(start["occurred_at"], run_at), abs=1e-6)
    assert row.p50_seconds < seconds(start["occurred_at"], create["occurred_at"]) - 0.4

    past = await manager.create_job(user_id="past", **job(), run_at=db_now - dt.timedelta(hours=1))
    await claim_one(manager, past.job_id)
    create, start = await stream(pool, past.job_id)
    [row] = await manager.get_claim_latency(hours=1, user_id="past")  # a run_at already past: from the create
    assert row.p50_seconds == pytest.approx(seconds(start["occurred_at"], create["occurred_at"]), abs=1e-6)


async def test_a_reschedule_sets_the_not_before_and_a_start_by_hand_before_it_waited_nothing(
        manager: VideoJobManager, pool) -> None:
    db_now = await pool.fetchval("SELECT now()")
    moved = await manager.create_job(user_id="moved", **job(), run_at=db_now + dt.timedelta(hours=1))
    await manager.reschedule_job(moved.job_id, run_at=db_now + dt.timedelta(seconds=0.3))
    await claim_one(manager, moved.job_id)
    _, reschedule, start = await stream(pool, moved.job_id)
    [row] = await manager.get_claim_latency(hours=1, user_id="moved")  # the latest not-before of the stay wins
    assert row.p50_seconds == pytest.approx(
        seconds(start["occurred_at"], dt.datetime.fromisoformat(reschedule["data"]["run_at"])), abs=1e-6)

    early = await manager.create_job(user_id="early", **job(), run_at=db_now + dt.timedelta(hours=1))
    await manager.start_processing(early.job_id, "w")  # by hand: no claim holds it back
    [row] = await manager.get_claim_latency(hours=1, user_id="early")
    assert (row.claims, row.p50_seconds, row.max_seconds) == (1, 0.0, 0.0)
    assert_same_latency(as_table(await manager.get_claim_latency(hours=1)), await expected(pool))


async def test_the_platform_is_the_one_the_claim_matched(manager: VideoJobManager, pool) -> None:
    made = await manager.create_job(user_id="mover", **job("tiktok"))
    await manager.update_job_metadata(made.job_id, platform_target="instagram")
    [attempt] = await manager.claim_jobs("w", limit=1, platform_target="instagram")
    await manager.update_job_metadata(made.job_id, platform_target="youtube_shorts")  # after the claim
    assert [r.platform_target for r in await manager.get_claim_latency(hours=1)] == ["instagram"]
    assert attempt.job_id == made.job_id


async def test_an_end_user_sees_only_their_own_and_their_teams_waits(manager: VideoJobManager, pool) -> None:
    team = (await manager.teams.create("T1", "A")).team_id
    await manager.teams.add_member(team, "B")
    owners = {"A": "tiktok", "B": "instagram", "C": "youtube_shorts"}
    for user, platform in owners.items():
        await manager.as_user(user).create_job(user_id=user, **job(platform))
    await manager.as_user("A").create_job(user_id="A", team_id=team, **job("instagram"))
    while await manager.claim_jobs("w", limit=2):
        pass
    teams = {"A": {team}, "B": {team}, "C": set()}
    for user in owners:
        mine = await expected(pool, keep=lambda e, u=user: e["user_id"] == u or e["team_id"] in teams[u])
        assert_same_latency(as_table(await manager.as_user(user).get_claim_latency(hours=1)), mine)
    assert set(as_table(await manager.as_user("C").get_claim_latency())) == {"youtube_shorts"}
    assert set(as_table(await manager.as_user("B").get_claim_latency())) == {"instagram"}  # own + the team job
    assert as_table(await manager.as_user("B").get_claim_latency(team_id=team))["instagram"][0] == 1
    assert await manager.as_user("C").get_claim_latency(team_id=team) == []  # not their team: nothing
    with pytest.raises(AccessDenied):
        await manager.as_user("C").get_claim_latency(user_id="A")
    assert set(as_table(await manager.get_claim_latency(user_id="C"))) == {"youtube_shorts"}
    assert_same_latency(as_table(await manager.get_claim_latency()), await expected(pool))


@pytest.mark.parametrize(("arguments", "field"), [
    ({"hours": 0}, "hours"), ({"hours": 721}, "hours"), ({"hours": True}, "hours"), ({"hours": 1.5}, "hours"),
    ({"hours": "24"}, "hours"), ({"user_id": "a", "team_id": "00000000-0000-0000-0000-000000000000"}, "team_id"),
    ({"team_id": "not-a-team"}, "team_id"),
])
async def test_bad_arguments_are_validation_errors(manager: VideoJobManager, arguments: dict, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        await manager.get_claim_latency(**arguments)
    assert refused.value.field == field


async def test_the_window_counts_the_starts_since_it_opens(manager: VideoJobManager, pool) -> None:
    for _ in range(4):
        await manager.create_job(user_id="u", **job())
    await manager.claim_jobs("w", limit=2)
    since = await pool.fetchval("SELECT clock_timestamp()")
    await manager.claim_jobs("w", limit=2)
    rows = await pool.fetch("SELECT * FROM vjm.claim_waits($1)", since)
    want = await expected(pool, since)
    assert want["tiktok"][0] == 2
    assert_same_latency(as_table(dict(r) for r in rows), want)
    assert await pool.fetch("SELECT * FROM vjm.claim_waits(clock_timestamp())") == []


async def test_services_may_ask_and_the_projector_may_not(manager: VideoJobManager, pool) -> None:
    await manager.create_job(user_id="u", **job())
    await manager.claim_jobs("w")
    async with pool.acquire() as conn:
        for role in ("vjm_processor", "vjm_admin"):
            async with conn.transaction():
                await conn.execute(f"SET LOCAL ROLE {role}")
                assert await conn.fetchval("SELECT sum(claims) FROM vjm.claim_waits(now() - interval '1 hour')") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE vjm_projector")
                await conn.fetch("SELECT * FROM vjm.claim_waits(now() - interval '1 hour')")


async def test_a_recent_window_is_found_through_the_block_range_index(manager: VideoJobManager, pool) -> None:
    await manager.bulk_create_jobs([job(user_id="u")] * 10_000)
    await pool.execute("VACUUM ANALYZE vjm.job_events")  # statistics, and the ranges summarised
    since = await pool.fetchval("SELECT clock_timestamp()")
    await manager.claim_jobs("w", limit=5)
    pages = await pool.fetchval("SELECT pg_relation_size('vjm.job_events') / current_setting('block_size')::int")
    plan = "\n".join(r[0] for r in await pool.fetch(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM vjm.job_events WHERE type = 'start' AND occurred_at >= $1",
        since))
    assert "Bitmap Index Scan on job_events_occurred_at" in plan, plan
    read = sum(int(n) for n in re.findall(r"(?:exact|lossy)=(\d+)", plan))
    assert read < pages / 2, (read, pages, plan)
    function_plan = "\n".join(r[0] for r in await pool.fetch("EXPLAIN SELECT * FROM vjm.claim_waits($1)", since))
    assert "job_events_occurred_at" in function_plan, function_plan
