"""Issue "scheduling", first part: a create's priority (higher is claimed first) and run_at (never
claimed before it), stored in the create event, kept by the run queue, shown on the job."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from store.identity import create_role_pool
from store.projections import verify_projections
from tests.support.factories import create_data
from tests.support.rows_read import RUN_QUEUE_ROWS_READ
from tests.support.waiting import eventually
from videojobs import InvalidTransition, ValidationError, VideoJobManager

JOB = create_data(user_id="u1")


async def test_a_priority_9_job_queued_behind_10000_priority_0_jobs_starts_next(manager: VideoJobManager,
                                                                                 pool) -> None:
    await manager.bulk_create_jobs([JOB] * 10_000)
    urgent = await manager.create_job(**JOB, priority=9)
    [claimed] = await manager.claim_jobs("w", limit=1)
    assert claimed.job_id == urgent.job_id
    # Within a priority the oldest comes first (by the create event's time, then the job id).
    oldest = await pool.fetchval("SELECT job_id FROM vjm.job_events WHERE type = 'create' AND job_id <> $1 "
                                 "ORDER BY occurred_at, job_id LIMIT 1", urgent.job_id)
    [after] = await manager.claim_jobs("w", limit=1)
    assert after.job_id == oldest


async def test_priority_and_run_at_are_in_the_create_event_and_on_the_job(manager: VideoJobManager, pool) -> None:
    at = dt.datetime(2030, 1, 2, 3, 4, 5, 250_000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    job = await manager.create_job(**JOB, priority=4, run_at=at)
    assert (job.priority, job.run_at) == (4, at)
    data = await pool.fetchval("SELECT data FROM vjm.job_events WHERE job_id = $1 AND version = 1", job.job_id)
    assert (data["priority"], data["run_at"]) == (4, "2030-01-02T01:04:05.250000Z")
    queued = await pool.fetchrow("SELECT priority, not_before FROM vjm.run_queue WHERE job_id = $1", job.job_id)
    assert (queued["priority"], queued["not_before"]) == (4, at)
    assert (await manager.get_job_by_id(job.job_id)).run_at == at
    [bulk] = await manager.bulk_create_jobs([JOB | {"priority": 2, "run_at": "2030-01-02T03:04:05+02:00"}])
    assert (bulk.priority, bulk.run_at) == (2, at.replace(microsecond=0))


async def test_a_run_at_job_is_never_claimed_before_its_time_by_the_database_clock(manager: VideoJobManager,
                                                                                    pool) -> None:
    db_now = await pool.fetchval("SELECT now()")
    job = await manager.create_job(**JOB, run_at=db_now + dt.timedelta(seconds=1.5))
    run_at = await pool.fetchval("SELECT not_before FROM vjm.run_queue WHERE job_id = $1", job.job_id)
    deadline, seen_early = time.monotonic() + 15, 0
    async with pool.acquire() as conn:
        while True:
            async with conn.transaction():  # the claim reads now() of this transaction, as we do
                now = await conn.fetchval("SELECT now()")
                claimed = await conn.fetch("SELECT job_id FROM vjm.claim_jobs('w', 1, NULL)")
            assert bool(claimed) == (now >= run_at), (now, run_at)
            if claimed:
                break
            seen_early += 1
            assert time.monotonic() < deadline, "never claimed"
            await asyncio.sleep(0.05)  # poll: between probes of the boundary, bounded by the deadline above
    assert claimed[0]["job_id"] == job.job_id and seen_early > 0


@pytest.mark.parametrize(("fields", "field"), [
    ({"priority": 10}, "priority"), ({"priority": -1}, "priority"), ({"priority": True}, "priority"),
    ({"run_at": dt.datetime(2030, 1, 1)}, "run_at"), ({"run_at": "tomorrow"}, "run_at"),
])
async def test_a_bad_priority_or_run_at_is_refused_and_nothing_is_stored(manager: VideoJobManager, pool,
                                                                         fields: dict, field: str) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    with pytest.raises(ValidationError) as refused:
        await manager.create_job(**(JOB | fields))
    assert refused.value.field == field
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_the_scheduled_filter_lists_queued_jobs_whose_run_at_is_ahead(manager_with_listeners) -> None:
    manager = manager_with_listeners
    ahead = await manager.create_job(**JOB, run_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    await manager.create_job(**JOB, run_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    await manager.create_job(**JOB)

    async def listed() -> bool:
        page = await manager.list_jobs(filters={"scheduled": True})
        everything = await manager.list_jobs()
        return everything.total == 3 and [j.job_id for j in page.items] == [ahead.job_id] and page.total == 1
    await eventually(listed, what="the one job scheduled ahead, alone")


async def test_a_reschedule_moves_a_queued_job_in_the_claim_order_and_the_history_records_it(
        manager: VideoJobManager, pool) -> None:
    first = await manager.create_job(**JOB)
    later = await manager.create_job(**JOB, run_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    urgent = await manager.create_job(**JOB)
    await manager.reschedule_job(urgent.job_id, priority=9)
    await manager.reschedule_job(later.job_id, run_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    await manager.reschedule_job(first.job_id, run_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    claimed = [a.job_id for a in await manager.claim_jobs("w", limit=3)]
    assert claimed == [urgent.job_id, later.job_id]  # first is held back now; later may run at once
    types = [e.type for e in await manager.get_job_history(urgent.job_id)]
    assert types == ["create", "reschedule", "start"]
    data = await pool.fetchval("SELECT data FROM vjm.job_events WHERE job_id = $1 AND type = 'reschedule'",
                               later.job_id)
    assert data == {"run_at": "2000-01-01T00:00:00Z"}


async def test_only_a_queued_job_is_rescheduled_and_a_bad_one_changes_nothing(manager: VideoJobManager,
                                                                                pool) -> None:
    job = await manager.create_job(**JOB)
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    with pytest.raises(ValidationError):
        await manager.reschedule_job(job.job_id)  # neither priority nor run_at
    with pytest.raises(ValidationError):
        await manager.reschedule_job(job.job_id, priority=10)
    await manager.start_processing(job.job_id, "w")
    with pytest.raises(InvalidTransition):
        await manager.reschedule_job(job.job_id, priority=5)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before + 1  # the start alone


async def test_the_projection_shows_a_reschedule(manager_with_listeners) -> None:
    manager = manager_with_listeners
    job = await manager.create_job(**JOB)
    at = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    await manager.reschedule_job(job.job_id, priority=3, run_at=at)

    async def shown() -> bool:
        page = await manager.list_jobs(filters={"scheduled": True})
        return [(j.job_id, j.priority, j.run_at) for j in page.items] == [(job.job_id, 3, at)]
    await eventually(shown, what="the rescheduled job's priority and run_at in the projection")


@pytest.mark.parametrize("capped", [False, True])
async def test_claims_do_not_read_the_jobs_held_back_for_later(manager: VideoJobManager, database_url: str,
                                                               pool, capped: bool) -> None:
    """3,000 users' jobs wait for tomorrow at the head of the claim order (the same turn, older), three are claimable:
    a claim, capped or not, reads a handful of run-queue rows. The held-back jobs are out of the claim order's
    indexes; a claim that filtered them row by row read all 3,000, every claim (20,000: 0.55 -> 4.1 ms a claim)."""
    tomorrow = await pool.fetchval("SELECT now() + interval '1 day'")
    await manager.bulk_create_jobs([create_data(user_id=f"later{i}", run_at=tomorrow) for i in range(3000)])
    ready = {j.job_id for j in await manager.bulk_create_jobs([create_data(user_id=f"now{i}") for i in range(3)])}
    if capped:
        await manager.queue.set_cap("user", "*", 5)
    claimers = await create_role_pool(database_url, role="vjm_processor", min_size=1, max_size=1)
    try:
        async with claimers.acquire() as conn, conn.transaction():
            claimed = [r["job_id"] for r in await conn.fetch("SELECT job_id FROM vjm.claim_jobs('w', 2)")]
            assert await conn.fetchval(RUN_QUEUE_ROWS_READ) < 100
    finally:
        await claimers.close()
    assert len(claimed) == 2 and set(claimed) <= ready


async def test_a_held_back_job_enters_the_claim_order_when_due_at_the_turn_being_served(manager: VideoJobManager,
                                                                                        pool) -> None:
    """A job held back for a moment is passed over until its time; the first claim after it releases it, and it
    takes the turn being served then (as an upload made then would), ahead of the later turns of a user who queued
    after it was created."""
    soon = await manager.create_job(**create_data(user_id="early"),
                                    run_at=await pool.fetchval("SELECT now() + interval '1 second'"))
    assert await pool.fetchval("SELECT turn FROM vjm.run_queue WHERE job_id = $1", soon.job_id) is None
    others = [j.job_id for j in await manager.bulk_create_jobs([create_data(user_id="late")] * 3)]
    [first] = await manager.claim_jobs("w", limit=1)
    assert first.job_id == others[0]  # turn 0; the held job is not claimable yet
    assert await pool.fetchval("SELECT held FROM vjm.run_queue WHERE job_id = $1", soon.job_id)
    due = await pool.fetchval("SELECT not_before FROM vjm.run_queue WHERE job_id = $1", soon.job_id)
    await eventually(lambda: _db_now_after(pool, due), within=10, what="the database clock past the job's run_at")
    [second] = await manager.claim_jobs("w", limit=1)
    assert second.job_id == soon.job_id  # turn 1, the one being served, and older than the late user's turn-1 job
    assert await pool.fetchrow("SELECT held, turn FROM vjm.run_queue WHERE job_id = $1", soon.job_id) == (False, 1)


async def _db_now_after(pool, moment: dt.datetime) -> bool:
    return bool(await pool.fetchval("SELECT now() > $1", moment))


async def test_verify_checks_each_queued_jobs_not_before_and_whether_it_is_held(database_url: str, manager, pool,
                                                                                make_projector) -> None:
    """The run queue's "not before" is what the log set last in the job's stay in the queue, and a job is held back
    while that time is ahead: verify names an entry that lost its hold, and one given a time the log never set."""
    tomorrow = await pool.fetchval("SELECT now() + interval '1 day'")
    later = await manager.create_job(**create_data(user_id="u-later"), run_at=tomorrow)
    plain = await manager.create_job(**create_data(user_id="u-plain"))
    await make_projector().run_once()
    assert (await verify_projections(database_url)).ok
    await pool.execute("UPDATE vjm.run_queue SET held = false WHERE job_id = $1", later.job_id)
    await pool.execute("UPDATE vjm.run_queue SET not_before = $2, held = true WHERE job_id = $1", plain.job_id,
                       tomorrow)
    found = {(d.key, d.columns) for d in (await verify_projections(database_url)).differences
             if d.table == "job_queue"}
    assert found == {(str(later.job_id), ("held",)), (str(plain.job_id), ("held", "not_before"))}


async def test_jobs_scheduled_in_bulk_take_turns_with_everyone_when_their_time_comes(manager: VideoJobManager,
                                                                                     pool) -> None:
    """User A schedules 200 uploads for a moment later while user C's backlog is being served; when they are due,
    user B uploads 10. Every one of B's jobs starts before A's 50th: A's jobs take their turns when their time
    comes, as uploads made then would. Turns taken when they were scheduled were older than the turn being served,
    so all 200 went before B's first (the fairness issue 19 fixed for uploads, back for scheduled ones)."""
    await manager.bulk_create_jobs([create_data(user_id="c")] * 300)
    run_at = await pool.fetchval("SELECT now() + interval '1 second'")
    scheduled = {j.job_id for j in await manager.bulk_create_jobs([create_data(user_id="a", run_at=run_at)] * 200)}
    for _ in range(150):  # C's turns 0-149 are served meanwhile
        [claimed] = await manager.claim_jobs("w", limit=1)
        assert claimed.job_id not in scheduled
    await eventually(lambda: _db_now_after(pool, run_at), within=10, what="the database clock past the run_at")
    late = {j.job_id for j in await manager.bulk_create_jobs([create_data(user_id="b")] * 10)}
    a_started = 0
    while late:
        [claimed] = await manager.claim_jobs("w", limit=1)
        late.discard(claimed.job_id)
        a_started += claimed.job_id in scheduled
    assert 0 < a_started < 50  # A's jobs are claimable and interleaved, not ahead of B's in a block
