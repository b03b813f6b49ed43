"""Issue "scheduling", fair claims and capacity (sql/schema/063_claims.sql): within a priority users (or teams) take
turns; caps on what processes at once per user, team and platform are never overshot by racing claimers; claims pause
and resume per platform or for everything, and every change of the policy is in its history."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from store.identity import create_role_pool
from tests.support.factories import create_data
from tests.support.rows_read import RUN_QUEUE_ROWS_READ
from tests.support.waiting import eventually
from videojobs import AccessDenied, ValidationError, VideoJobManager

CLAIM = "SELECT job_id, user_id FROM vjm.claim_jobs($1, $2)"
PROCESSING = "SELECT count(*) FROM vjm.run_queue WHERE processing AND user_id = $1"
WAITING_FOR_A_CAP_KEY = ("SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                         " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))")


@pytest.fixture
async def claimers(database_url: str):
    """vjm_app acting as vjm_processor, eight connections: what racing workers connect as."""
    pool = await create_role_pool(database_url, role="vjm_processor", min_size=8, max_size=8)
    yield pool
    await pool.close()


async def _queue(manager: VideoJobManager, user_id: str, n: int, **extra) -> list[uuid.UUID]:
    jobs = []
    for offset in range(0, n, 5000):
        made = await manager.bulk_create_jobs([create_data(user_id=user_id, **extra)] * min(5000, n - offset))
        jobs += [j.job_id for j in made]
    return jobs


async def test_a_late_small_upload_is_served_before_a_bulk_uploaders_50th_job(manager: VideoJobManager,
                                                                            claimers, pool) -> None:
    """User A queues 10,000 jobs, then user B queues 10. With 4 claimers, every one of B's jobs starts
    before A's 50th job after B's upload."""
    await _queue(manager, "user-a", 10_000)
    before = await asyncio.gather(*(claimers.fetch(CLAIM, f"w{i}", 5) for i in range(4)))  # A is being served
    assert {r["user_id"] for rows in before for r in rows} == {"user-a"}
    b_jobs = set(await _queue(manager, "user-b", 10))
    uploaded = await pool.fetchval("SELECT max(position) FROM vjm.job_events WHERE job_id = ANY ($1)", list(b_jobs))

    async def claimer(name: str) -> None:
        while await pool.fetchval("SELECT count(*) FROM vjm.run_queue WHERE queued AND job_id = ANY ($1)",
                                  list(b_jobs)):
            await claimers.fetch(CLAIM, name, 1)
    await asyncio.wait_for(asyncio.gather(*(claimer(f"w{i}") for i in range(4))), 60)
    starts = await pool.fetch("SELECT job_id, user_id FROM vjm.job_events WHERE type = 'start' AND position > $1 "
                              "ORDER BY position", uploaded)
    last_b = max(i for i, s in enumerate(starts) if s["job_id"] in b_jobs)
    a_before_last_b = sum(1 for s in starts[:last_b] if s["user_id"] == "user-a")
    assert {s["job_id"] for s in starts if s["user_id"] == "user-b"} == b_jobs
    assert a_before_last_b < 50, f"A started {a_before_last_b} jobs before B's last one"


async def test_within_a_priority_users_take_turns_and_priority_still_comes_first(manager: VideoJobManager) -> None:
    await _queue(manager, "alice", 6)
    await _queue(manager, "bob", 3)
    urgent = await manager.create_job(**create_data(user_id="carol"), priority=9)
    order = [(a.job.user_id, a.job_id) for a in await manager.claim_jobs("w", limit=9)]
    assert order[0] == ("carol", urgent.job_id)
    assert [u for u, _ in order[1:7]] == ["alice", "bob", "alice", "bob", "alice", "bob"]
    assert [u for u, _ in order[7:]] == ["alice", "alice"]


async def test_a_reschedule_to_another_priority_takes_the_next_turn_there(manager: VideoJobManager) -> None:
    alice = await _queue(manager, "alice", 4)
    bob = await _queue(manager, "bob", 2)
    await manager.reschedule_job(alice[3], priority=5)
    await manager.reschedule_job(bob[1], priority=5)
    order = [a.job_id for a in await manager.claim_jobs("w", limit=6)]
    assert order[:2] == [alice[3], bob[1]]  # both take turn 0 at priority 5, the older first
    assert order[2:] == [alice[0], bob[0], alice[1], alice[2]]


async def test_teams_take_turns_when_the_fair_share_is_by_team(manager: VideoJobManager, pool) -> None:
    team = await manager.teams.create("studio", owner_id="ann")
    await manager.teams.add_member(team.team_id, "ben")
    await manager.queue.set_fair_share("team", reason="studios share")
    await _queue(manager, "ann", 3, team_id=str(team.team_id))
    await _queue(manager, "ben", 3, team_id=str(team.team_id))
    await _queue(manager, "solo", 3)
    users = [a.job.user_id for a in await manager.claim_jobs("w", limit=6)]
    assert users == ["ann", "solo", "ann", "solo", "ann", "solo"]  # the team's 6 jobs take one key's turns
    assert await pool.fetchval("SELECT fair_share FROM vjm.claim_settings") == "team"


async def test_claimers_racing_at_a_users_cap_never_overshoot_it(manager: VideoJobManager, claimers, pool) -> None:
    await manager.queue.set_cap("user", "*", 3)
    await manager.queue.set_cap("user", "vip", 5)
    jobs = {u: await _queue(manager, u, 40) for u in ("alice", "vip")}
    caps = {"alice": 3, "vip": 5}
    for round_ in range(5):  # eight claimers race until both are at their cap; then some work ends
        for _ in range(20):
            await asyncio.gather(*(claimers.fetch(CLAIM, f"w{i}", 2) for i in range(8)))
            running = {u: await pool.fetchval(PROCESSING, u) for u in caps}
            assert all(running[u] <= caps[u] for u in caps), (round_, running)
            if running == caps:
                break
        assert running == caps, round_
        ending = await pool.fetch("SELECT job_id FROM vjm.run_queue WHERE processing ORDER BY job_id LIMIT 3")
        for row in ending:
            await manager.complete_job(row["job_id"], ["/o.mp4"])
    assert await pool.fetchval("SELECT count(*) FROM vjm.run_queue WHERE processing AND user_id <> ALL ($1)",
                               list(jobs)) == 0


async def test_a_claimer_holding_a_cap_key_makes_the_others_skip_it_until_it_commits(manager: VideoJobManager,
                                                                                   claimers, pool) -> None:
    """The edge, step by step: with alice at her cap less one, a claim that took her last slot and has not
    committed makes a concurrent claim skip her (never wait, never overshoot); after it commits she is full."""
    await manager.queue.set_cap("user", "alice", 2)
    await _queue(manager, "alice", 5)
    await _queue(manager, "bob", 5)
    assert [r["user_id"] for r in await claimers.fetch(CLAIM, "w0", 1)] == ["alice"]
    async with claimers.acquire() as first, claimers.acquire() as second:
        async with first.transaction():
            assert [r["user_id"] for r in await first.fetch(CLAIM, "w1", 1)] == ["bob"]
            assert [r["user_id"] for r in await first.fetch(CLAIM, "w1", 1)] == ["alice"]  # her last slot, open
            async with asyncio.timeout(5):  # skips her key: never waits for the open claim
                assert [r["user_id"] for r in await second.fetch(CLAIM, "w2", 3)] == ["bob", "bob", "bob"]
        assert [r["user_id"] for r in await second.fetch(CLAIM, "w2", 3)] == ["bob"]  # she is at her cap
    assert await pool.fetchval(PROCESSING, "alice") == 2


async def test_platform_and_team_caps_bind_claims(manager: VideoJobManager, claimers, pool) -> None:
    team = await manager.teams.create("crew", owner_id="tess")
    await manager.queue.set_cap("platform", "instagram", 2)
    await manager.queue.set_cap("team", str(team.team_id), 1)
    await _queue(manager, "ig", 5, platform_target="instagram")
    await _queue(manager, "tess", 5, team_id=str(team.team_id))
    await asyncio.gather(*(claimers.fetch(CLAIM, f"w{i}", 3) for i in range(8)))
    counts = dict(await pool.fetch("SELECT user_id, count(*) FROM vjm.run_queue WHERE processing GROUP BY 1"))
    assert counts == {"ig": 2, "tess": 1}
    await manager.queue.set_cap("platform", "instagram", None)  # lifted: the rest may start
    await claimers.fetch(CLAIM, "w", 10)
    assert await pool.fetchval(PROCESSING, "ig") == 5


async def test_pause_and_resume_per_platform_and_for_everything_are_in_the_history(manager: VideoJobManager,
                                                                                   claimers) -> None:
    ops = manager.as_service("ops")
    tiktok = await _queue(manager, "u1", 2)
    insta = await _queue(manager, "u1", 2, platform_target="instagram")
    await ops.queue.pause("tiktok", reason="encoder upgrade")
    assert {r["job_id"] for r in await claimers.fetch(CLAIM, "w", 10)} == {insta[0], insta[1]}
    await ops.queue.pause()
    await ops.queue.resume("tiktok")  # everything is still paused
    assert await claimers.fetch(CLAIM, "w", 10) == []
    await ops.queue.resume()
    assert {r["job_id"] for r in await claimers.fetch(CLAIM, "w", 10)} == set(tiktok)
    history = await manager.queue.history(10)
    assert [(h.setting, h.scope, h.actor, h.reason) for h in reversed(history)] == [
        ("pause", "tiktok", "ops", "encoder upgrade"), ("pause", "*", "ops", None), ("resume", "tiktok", "ops", None),
        ("resume", "*", "ops", None)]
    assert (await manager.queue.policy()).pauses == []


async def test_a_resume_wakes_listening_workers(manager: VideoJobManager, database_url: str) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.add_listener("vjm_queue", lambda *args: heard.put_nowait(args[3]))
        await manager.queue.pause("instagram")
        await manager.queue.resume("instagram")
        assert '"resume"' in await asyncio.wait_for(heard.get(), 10)
    finally:
        await conn.close()


async def test_the_policy_refuses_end_users_processors_and_bad_input_changing_nothing(
        manager: VideoJobManager, claimers, pool) -> None:
    with pytest.raises(AccessDenied):
        await manager.as_user("u1").queue.pause()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await claimers.fetch("SELECT * FROM vjm.pause_claims()")
    bad = [lambda: manager.queue.pause("myspace"), lambda: manager.queue.set_cap("org", "x", 1),
           lambda: manager.queue.set_cap("team", "not-a-team", 1), lambda: manager.queue.set_cap("user", "a", -1),
           lambda: manager.queue.set_cap("user", "a", True), lambda: manager.queue.set_fair_share("everyone"),
           lambda: manager.queue.pause(reason="x" * 501), lambda: manager.queue.history(0),
           lambda: manager.queue.set_cap("user", "nobody", None)]  # no such cap to remove: nothing recorded
    for call in bad:
        with pytest.raises(ValidationError):
            await call()
    for sql_call in ["set_claim_cap('user', NULL, 1)", "set_claim_cap('team', 'ABC', 1)",
                     "set_claim_cap('platform', 'myspace', 1)", "set_claim_cap('user', 'a', -5)",
                     "pause_claims('TikTok')", "set_fair_share(NULL)"]:
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await pool.fetch(f"SELECT * FROM vjm.{sql_call}")
    assert await pool.fetchval("SELECT count(*) FROM vjm.queue_settings_history") == 0
    assert await pool.fetchval("SELECT count(*) FROM vjm.claim_caps") == 0


async def test_verify_holds_after_fair_capped_claims_and_their_ends(manager: VideoJobManager, claimers) -> None:
    await manager.queue.set_cap("user", "*", 2)
    for u in ("a", "b", "c"):
        await _queue(manager, u, 4)
    ids: list = []
    while len(ids) < 6:  # concurrent claims may come back short (a user's key another claim judges is skipped)
        claimed = await asyncio.gather(*(claimers.fetch(CLAIM, f"w{i}", 2) for i in range(4)))
        ids += [r["job_id"] for rows in claimed for r in rows]
        assert len(ids) <= 6  # two each: every cap holds
    await manager.complete_job(ids[0], ["/o.mp4"])
    await manager.fail_job(ids[1], "encoder crashed")
    await manager.cancel_job(ids[2])
    await manager.maintenance.wait_for_projection()
    assert (await manager.maintenance.verify_projections()).ok


async def test_a_capped_platforms_backlog_at_the_head_does_not_hide_the_other_platforms(manager: VideoJobManager,
                                                                                       claimers) -> None:
    """2,000 tiktok jobs ahead of 1,000 instagram ones, tiktok at its cap: a claim over every platform walks past
    the shut platform (its backlog is longer than the claim's look-ahead) and takes instagram jobs."""
    await manager.bulk_create_jobs([create_data(user_id=f"t{i}") for i in range(2000)])
    insta = await manager.bulk_create_jobs([create_data(user_id=f"i{i}", platform_target="instagram")
                                            for i in range(1000)])
    assert len(await claimers.fetch(CLAIM, "w", 1)) == 1  # a tiktok job runs
    await manager.queue.set_cap("platform", "tiktok", 1)
    rows = await claimers.fetch(CLAIM, "w", 3)
    assert [r["job_id"] for r in rows] == [j.job_id for j in insta[:3]]


async def test_a_busy_platform_is_skipped_by_mixed_claims_and_waited_for_only_when_nothing_else_remains(
        manager: VideoJobManager, claimers, pool) -> None:
    """A claim holding instagram's cap key open (its job taken, not committed): a claim over every platform does
    not queue behind it and takes tiktok work; a claim of instagram alone waits for it, then counts what it
    committed and stops at the cap."""
    await manager.queue.set_cap("platform", "instagram", 2)
    await _queue(manager, "ig", 3, platform_target="instagram")
    await _queue(manager, "tt", 3)
    async with claimers.acquire() as first, claimers.acquire() as second, claimers.acquire() as third:
        tx = first.transaction()
        await tx.start()
        assert [r["user_id"] for r in await first.fetch(CLAIM, "w1", 1)] == ["ig"]  # instagram's key held open
        async with asyncio.timeout(5):  # never waits for the open claim
            assert {r["user_id"] for r in await second.fetch(CLAIM, "w2", 2)} == {"tt"}
        waiting = asyncio.create_task(third.fetch("SELECT job_id, user_id FROM vjm.claim_jobs($1, $2, $3)",
                                                  "w3", 5, ["instagram"]))
        await eventually(lambda: pool.fetchval(WAITING_FOR_A_CAP_KEY), 10, "the instagram-only claim to wait")
        assert not waiting.done()
        await tx.commit()
        rows = await asyncio.wait_for(waiting, 10)
    assert [r["user_id"] for r in rows] == ["ig"]  # one more: the cap (2) counted the committed claim
    assert await pool.fetchval(PROCESSING, "ig") == 2



async def test_a_full_platforms_backlog_is_not_read_by_claims(manager: VideoJobManager, claimers) -> None:
    """Tiktok at its cap with 3,000 tiktok jobs queued: a claim of tiktok alone finds nothing without walking
    them (it once read every queued tiktok job, each claim), and a claim over every platform takes the
    instagram job behind them without reading them either (it once passed over each, row by row)."""
    await _queue(manager, "tt", 3000)
    insta = await _queue(manager, "ig", 1, platform_target="instagram")
    await manager.queue.set_cap("platform", "tiktok", 0)
    async with claimers.acquire() as conn, conn.transaction():
        assert await conn.fetch("SELECT job_id FROM vjm.claim_jobs($1, $2, $3)", "w", 5, ["tiktok"]) == []
        assert await conn.fetchval(RUN_QUEUE_ROWS_READ) < 100  # run-queue rows read by the claim, of 3,001 queued
    async with claimers.acquire() as conn, conn.transaction():
        assert [r["job_id"] for r in await conn.fetch(CLAIM, "w", 5)] == insta
        assert await conn.fetchval(RUN_QUEUE_ROWS_READ) < 100


async def _queue_with_tiktok_full(manager: VideoJobManager, pool, *, jobs: int, users: int, chunk: int) -> None:
    """`jobs` more queued jobs of `users` users over the three platforms in turn, the queue analyzed; then tiktok at
    its cap (0) and each user capped at 2."""
    platforms = ["tiktok", "instagram", "youtube_shorts"]
    for offset in range(0, jobs, chunk):
        await manager.bulk_create_jobs([create_data(user_id=f"u{i % users}", platform_target=platforms[i % 3])
                                        for i in range(offset, offset + chunk)])
    await pool.execute("ANALYZE vjm.run_queue")
    await manager.queue.set_cap("platform", "tiktok", 0)
    await manager.queue.set_cap("user", "*", 2)


async def test_a_claim_past_a_full_platform_walks_each_open_platforms_own_order(manager: VideoJobManager, pool,
                                                                                database_url: str) -> None:
    """A full platform's backlog at the head of 20,000 queued jobs of 200 users, analyzed, and the session's kept
    plans: a capped claim reads a handful of run-queue rows. The merged walk's plan once weighed start-up cost
    alone: each branch walked the global claim order, filtered by platform through the full platform's backlog,
    and the branches of no platform read the whole queue (10 ms a claim)."""
    await manager.bulk_create_jobs([create_data(user_id=f"u{i % 200}", platform_target="tiktok") for i in range(4000)])
    await _queue_with_tiktok_full(manager, pool, jobs=16_000, users=200, chunk=8_000)
    claimers = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=1)
    try:
        async with claimers.acquire() as conn:
            for _ in range(3):  # the session's plans, made and kept
                assert len(await conn.fetch(CLAIM, "w", 1)) == 1
            async with conn.transaction():
                [claimed] = await conn.fetch("SELECT job_id FROM vjm.claim_jobs($1, $2)", "w", 1)
                assert await conn.fetchval(RUN_QUEUE_ROWS_READ) < 100
    finally:
        await claimers.close()
    assert await pool.fetchval("SELECT platform_target FROM vjm.run_queue WHERE job_id = $1", claimed[0]) != "tiktok"


async def test_a_claim_past_a_full_platform_merges_index_scans_at_any_queue_size(manager: VideoJobManager, pool,
                                                                                 database_url: str) -> None:
    """30,000 queued over three platforms, analyzed, tiktok at its cap: a new session's capped claim (its first,
    custom plans) reads a handful of run-queue rows. Planned without a limit per platform, the merged walk sorted
    every queued job of the open platforms instead (60,000 rows read here; 1.7 s a claim at a million)."""
    await _queue_with_tiktok_full(manager, pool, jobs=30_000, users=300, chunk=5_000)
    fresh = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=1)
    try:
        async with fresh.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval("SELECT array_agg(job_id) FROM vjm.claim_jobs($1, $2)", "w", 1)
            assert await conn.fetchval(RUN_QUEUE_ROWS_READ) < 1_000
        assert len(claimed) == 1
        assert await pool.fetchval("SELECT platform_target FROM vjm.run_queue WHERE job_id = $1", claimed[0]) != "tiktok"
    finally:
        await fresh.close()
