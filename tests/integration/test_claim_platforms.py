"""Claims over a set of platforms (issue 18, the processor runtime): one claim takes the oldest queued jobs across
every platform it names (vjm.claim_jobs(worker, limit, text[])), and a set that names nothing, names an unknown
platform or holds a NULL is refused with a typed error, changing nothing."""

from __future__ import annotations

import asyncpg
import pytest

from store.identity import create_role_pool
from store.job_writes import claim_jobs as store_claim_jobs
from store.leases import next_claimable_in as store_next_claimable_in
from tests.support.factories import create_data
from tests.support.waiting import eventually
from tests.support.workers import running_in_process
from videojobs import ValidationError, VideoJobManager, Worker

QUEUE = "SELECT array_agg(job_id ORDER BY created_at, job_id) FROM vjm.job_queue"
EVENTS = "SELECT count(*) FROM vjm.job_events"
# (the set a claim names, as SQL) that vjm.check_platforms refuses
REFUSED_SETS = ["'{}'::text[]", "ARRAY['tiktok', NULL]", "ARRAY['myspace']", "ARRAY[NULL]::text[]",
                "ARRAY[['tiktok'], ['instagram']]", "ARRAY['TikTok']"]


@pytest.fixture
async def processor_pool(database_url: str):
    """vjm_app acting as vjm_processor: what a worker connects as."""
    pool = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=2)
    yield pool
    await pool.close()


async def _jobs(manager: VideoJobManager, *platforms: str) -> list:
    """One job per platform given, created in that order (so oldest first)."""
    return [await manager.create_job(**create_data(user_id="u1", platform_target=p)) for p in platforms]


async def test_one_claim_takes_the_oldest_jobs_across_its_platforms(manager: VideoJobManager) -> None:
    jobs = await _jobs(manager, "tiktok", "youtube_shorts", "instagram", "tiktok", "youtube_shorts", "instagram")
    got = await manager.claim_jobs("w", limit=3, platform_target=["instagram", "tiktok"])
    assert [a.job_id for a in got] == [jobs[0].job_id, jobs[2].job_id, jobs[3].job_id]  # oldest first, mixed
    assert [a.job.platform_target for a in got] == ["tiktok", "instagram", "tiktok"]
    [last] = await manager.claim_jobs("w", limit=5, platform_target=("tiktok", "instagram", "tiktok"))
    assert last.job_id == jobs[5].job_id
    assert [a.job_id for a in await manager.claim_jobs("w", limit=5)] == [jobs[1].job_id, jobs[4].job_id]


async def test_a_single_platform_and_none_still_claim_as_before(manager: VideoJobManager) -> None:
    tiktok, insta = await _jobs(manager, "tiktok", "instagram")
    assert [a.job_id for a in await manager.claim_jobs("w", platform_target="instagram")] == [insta.job_id]
    assert [a.job_id for a in await manager.claim_jobs("w", platform_target=None)] == [tiktok.job_id]


async def test_the_sql_claim_takes_a_set_of_platforms_oldest_first(manager, processor_pool) -> None:
    jobs = await _jobs(manager, "instagram", "youtube_shorts", "tiktok")
    rows = await processor_pool.fetch("SELECT job_id FROM vjm.claim_jobs('w', 10, ARRAY['tiktok', 'instagram'])")
    assert [r["job_id"] for r in rows] == [jobs[0].job_id, jobs[2].job_id]
    assert [r["job_id"] for r in await processor_pool.fetch("SELECT job_id FROM vjm.claim_jobs('w', 10)")] == [
        jobs[1].job_id]  # no set: every platform


@pytest.mark.parametrize("platforms", REFUSED_SETS)
async def test_a_bad_set_of_platforms_is_refused_in_sql_and_changes_nothing(manager, pool, processor_pool,
                                                                            platforms: str) -> None:
    await _jobs(manager, "tiktok", "instagram")
    queue, events = await pool.fetchval(QUEUE), await pool.fetchval(EVENTS)
    for call in (f"SELECT * FROM vjm.claim_jobs('w', 5, {platforms})",
                 f"SELECT * FROM vjm.claim_jobs_leased('w', 5, {platforms}, 60)",
                 f"SELECT vjm.next_claimable_in({platforms})"):
        with pytest.raises(asyncpg.PostgresError) as refused:
            await processor_pool.fetch(call)
        assert refused.value.sqlstate == "22023" and "platforms must be" in str(refused.value)
    assert (await pool.fetchval(QUEUE), await pool.fetchval(EVENTS)) == (queue, events)
    assert await pool.fetchval("SELECT count(*) FROM vjm.leases") == 0


@pytest.mark.parametrize("platforms", [[], ["tiktok", None], ["myspace"], "myspace", 7, {"tiktok": 1}, [["tiktok"]]])
async def test_the_manager_refuses_a_bad_set_of_platforms_and_claims_nothing(manager, pool, platforms) -> None:
    await _jobs(manager, "tiktok")
    queue = await pool.fetchval(QUEUE)
    with pytest.raises(ValidationError) as refused:
        await manager.claim_jobs("w", limit=5, platform_target=platforms)
    assert refused.value.field == "platform_target"
    with pytest.raises(ValidationError):
        await manager.processors.next_claimable_in(platforms)
    assert await pool.fetchval(QUEUE) == queue


@pytest.mark.parametrize("platforms", [[], ["tiktok", None], ["myspace"]])
async def test_the_store_maps_the_database_refusal_to_a_validation_error(manager, pool, platforms) -> None:
    """The database's own check, reached without the manager's: the same typed error."""
    await _jobs(manager, "tiktok")
    with pytest.raises(ValidationError):
        await store_claim_jobs(pool, "w", 5, platforms)
    with pytest.raises(ValidationError):
        await store_next_claimable_in(pool, platforms)
    assert len(await pool.fetchval(QUEUE)) == 1


async def test_next_claimable_in_takes_a_set_of_platforms(manager: VideoJobManager) -> None:
    [held, _] = await _jobs(manager, "instagram", "tiktok")
    [attempt] = await manager.claim_jobs("w", platform_target="instagram")
    await manager.processors.requeue_job(held.job_id, attempt.attempt, retry_after=30)
    assert 28 < await manager.processors.next_claimable_in(["tiktok", "instagram"]) <= 30
    assert await manager.processors.next_claimable_in(["tiktok", "youtube_shorts"]) is None
    assert [a.job.platform_target for a in await manager.claim_jobs("w", 5, ["tiktok", "instagram"])] == ["tiktok"]


async def test_a_worker_of_two_platforms_claims_across_them_oldest_first(manager: VideoJobManager) -> None:
    """One claim per pass for all its platforms: the jobs start in the order they were created, not platform by
    platform, and a job of another platform stays queued."""
    jobs = await _jobs(manager, "tiktok", "instagram", "youtube_shorts", "tiktok")
    worker, seen = Worker(manager=manager, concurrency=4, platforms=["tiktok", "instagram"]), []

    @worker.handler
    async def handle(job, ctx) -> list[str]:
        seen.append(job.job_id)
        return []

    async with running_in_process(worker):
        await eventually(lambda: len(seen) == 3, within=10)
    assert seen == [jobs[0].job_id, jobs[1].job_id, jobs[3].job_id]
    assert (await manager.get_job_by_id(jobs[2].job_id)).status == "queued"
