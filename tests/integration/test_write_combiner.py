"""Write combining (store.write_combiner): concurrent appends from one process share one statement and one commit;
each caller gets its own event or its own refusal, only after the commit, and one job's items apply in order."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from statemachine import InvalidTransition
from store import EventStore, prepare_event
from store.write_combiner import WriteCombiner
from tests.support.factories import create_data
from videojobs import JobNotFound, StaleAttempt, ValidationError

EVENTS_OF = "SELECT count(*) FROM vjm.job_events WHERE job_id = $1"


def _create(user_id: str = "u1", **extra):
    return prepare_event("create", create_data(**extra), user_id=user_id, actor="svc")


def _start(job_id):
    return prepare_event("start", {"worker_id": "w"}, job_id=job_id, actor="svc")


async def test_concurrent_appends_share_rounds_and_each_caller_gets_its_own_event(pool) -> None:
    combiner = WriteCombiner(pool)
    created = await asyncio.gather(*(combiner.append(_create(f"user-{i}")) for i in range(40)))
    assert len({e.job_id for e in created}) == 40
    assert [e.user_id for e in created] == [f"user-{i}" for i in range(40)]  # each caller its own
    assert combiner.rounds_run < 40  # combined: fewer statements than appends
    started = await asyncio.gather(*(combiner.append(_start(e.job_id)) for e in created))
    assert [(s.job_id, s.version, s.to_state) for s in started] == [(e.job_id, 2, "processing") for e in created]
    assert combiner.items_sent == 80


async def test_a_refused_item_fails_its_caller_only(pool, store: EventStore) -> None:
    jobs = [await store.append(_create()) for _ in range(3)]
    combiner = WriteCombiner(pool)
    outcomes = await asyncio.gather(
        combiner.append(_start(jobs[0].job_id)),
        combiner.append(prepare_event("complete", {"output_paths": ["/o.mp4"]}, job_id=jobs[1].job_id)),  # queued
        combiner.append(_start(uuid.uuid4())),  # no such job
        combiner.append(_start(jobs[2].job_id)),
        return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["Event", InvalidTransition.__name__, JobNotFound.__name__,
                                                    "Event"]
    assert await pool.fetchval(EVENTS_OF, jobs[1].job_id) == 1  # nothing written for the refused one


async def test_one_jobs_items_apply_in_the_order_given_across_rounds(pool, store: EventStore) -> None:
    job = await store.append(_create())
    combiner = WriteCombiner(pool, max_rounds=1)
    progress = [prepare_event("progress", {"percent": p}, job_id=job.job_id, actor="svc") for p in (10, 20, 30)]
    events = await asyncio.gather(combiner.append(_start(job.job_id)), *(combiner.append(p) for p in progress))
    assert [e.version for e in events] == [2, 3, 4, 5]
    assert [e.data.get("percent") for e in events[1:]] == [10, 20, 30]
    assert combiner.rounds_run == 4  # a job appears once per round


async def test_a_caller_is_answered_only_after_its_commit(pool, database_url: str) -> None:
    combiner = WriteCombiner(pool)
    other = await asyncpg.connect(database_url)
    try:
        async def append_and_look(i: int) -> int:
            event = await combiner.append(_create(f"u{i}"))
            return await other.fetchval(EVENTS_OF, event.job_id) if i == 0 else 1
        seen = await asyncio.gather(*(append_and_look(i) for i in range(10)))
        assert seen[0] == 1  # another session sees the event as soon as its caller hears of it
    finally:
        await other.close()


async def test_a_refused_create_in_a_batch_is_answered_on_its_own(pool) -> None:
    combiner = WriteCombiner(pool)
    outcomes = await asyncio.gather(
        combiner.append(_create("a")),
        combiner.append(prepare_event("create", create_data(), user_id="b", team_id=uuid.uuid4(), actor="svc")),
        combiner.append(_create("c")), return_exceptions=True)
    assert [getattr(o, "user_id", None) for o in outcomes] == ["a", None, "c"]
    assert isinstance(outcomes[1], Exception) and not isinstance(outcomes[1], asyncio.CancelledError)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE user_id = 'b'") == 0


async def test_keyed_creates_make_one_job_through_the_combiner(pool) -> None:
    combiner = WriteCombiner(pool)
    created = await asyncio.gather(*(combiner.append(_create(idempotency_key="upload-1")) for _ in range(8)))
    assert len({e.job_id for e in created}) == 1
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE type = 'create'") == 1


def test_the_combiner_refuses_nonsense_settings(pool) -> None:
    for kwargs in ({"max_batch": 0}, {"max_batch": 51}, {"max_rounds": 0}):
        with pytest.raises(ValueError):
            WriteCombiner(pool, **kwargs)
    with pytest.raises(ValidationError):
        prepare_event("start", {"worker_id": ""}, job_id=uuid.uuid4())


async def test_transitions_answered_with_their_job_are_combined_too(pool, store: EventStore) -> None:
    jobs = [await store.append(_create(f"u{i}")) for i in range(12)]
    for job in jobs:
        await store.append(_start(job.job_id))
    combiner = WriteCombiner(pool)
    histories = await asyncio.gather(*(
        combiner.append_returning_job(prepare_event("progress", {"percent": float(i)}, job_id=job.job_id,
                                                    actor="svc")) for i, job in enumerate(jobs)))
    assert combiner.rounds_run < len(jobs)
    for i, (job, history) in enumerate(zip(jobs, histories, strict=True)):
        assert (history.event.job_id, history.event.version, history.event.data["percent"]) == (job.job_id, 3, i)
        assert [e.version for e in history.since][-1] == 3  # the job up to its own event
    with pytest.raises(ValueError):
        await combiner.append_returning_job(_create())


async def test_the_managers_concurrent_reports_are_combined_and_each_gets_its_job(manager) -> None:
    jobs = [await manager.create_job(**create_data(user_id=f"u{i}")) for i in range(10)]
    attempts = [await manager.start_processing(job.job_id, "w") for job in jobs]
    combiner = manager._session.runtime.combiner
    assert combiner is not None  # the trusted manager combines by default (VJM_WRITE_COMBINING)
    before = combiner.rounds_run
    reported = await asyncio.gather(*(manager.report_progress(a.job_id, a.attempt, 10.0 * i)
                                      for i, a in enumerate(attempts)))
    assert [(r.job_id, r.progress_percent) for r in reported] == [(j.job_id, 10.0 * i) for i, j in enumerate(jobs)]
    assert combiner.rounds_run - before < len(jobs)
    with pytest.raises(StaleAttempt):  # a refusal through the combiner is the caller's own, typed
        await manager.complete_job(jobs[0].job_id, ["/o.mp4"], attempt=99)


async def test_creates_and_transitions_pending_together_go_in_one_statement(pool, store: EventStore) -> None:
    jobs = [await store.append(_create(f"old-{i}")) for i in range(3)]
    combiner = WriteCombiner(pool, max_rounds=1)
    outcomes = await asyncio.gather(*(combiner.append(_start(j.job_id)) for j in jobs),
                                    *(combiner.append(_create(f"new-{i}")) for i in range(3)))
    assert combiner.rounds_run == 1  # every one was pending in the same turn of the loop
    started, created = outcomes[:3], outcomes[3:]
    assert [(s.job_id, s.version, s.to_state) for s in started] == [(j.job_id, 2, "processing") for j in jobs]
    assert [(c.user_id, c.version, c.to_state) for c in created] == [(f"new-{i}", 1, "queued") for i in range(3)]
    assert len({e.xact_id for e in outcomes}) == 1  # one transaction
    for event in outcomes:  # each caller's event is the one stored
        stored = await pool.fetchrow("SELECT position, xact_id, data FROM vjm.job_events WHERE job_id = $1 "
                                     "AND version = $2", event.job_id, event.version)
        assert (stored["position"], stored["xact_id"], stored["data"]) == (event.position, event.xact_id, event.data)


async def test_a_refused_create_in_a_round_with_transitions_fails_its_caller_only(pool, store: EventStore) -> None:
    jobs = [await store.append(_create(f"old-{i}")) for i in range(2)]
    combiner = WriteCombiner(pool)
    outcomes = await asyncio.gather(
        combiner.append(_start(jobs[0].job_id)),
        combiner.append(_create("a")),
        combiner.append(prepare_event("create", create_data(), user_id="b", team_id=uuid.uuid4(), actor="svc")),
        combiner.append(_start(jobs[1].job_id)),
        combiner.append(_start(uuid.uuid4())),  # no such job
        return_exceptions=True)
    assert [type(o).__name__ for o in outcomes[:2]] == ["Event", "Event"]
    assert isinstance(outcomes[2], Exception) and not isinstance(outcomes[2], asyncio.CancelledError)
    assert type(outcomes[3]).__name__ == "Event" and isinstance(outcomes[4], JobNotFound)
    for job in jobs:  # each transition written once
        assert await pool.fetchval(EVENTS_OF, job.job_id) == 2
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE user_id IN ('a', 'b')") == 1


async def test_what_a_round_leaves_pending_goes_out_beside_it(pool) -> None:
    combiner = WriteCombiner(pool, max_batch=5, max_rounds=2)
    created = await asyncio.gather(*(combiner.append(_create(f"user-{i}")) for i in range(10)))
    assert [e.user_id for e in created] == [f"user-{i}" for i in range(10)]
    assert (combiner.rounds_run, combiner.items_sent) == (2, 10)  # five and five, side by side
    assert len({e.xact_id for e in created}) == 2


async def test_a_transition_alone_takes_the_one_item_path_with_the_same_answers(pool, store: EventStore) -> None:
    job = await store.append(_create())
    combiner = WriteCombiner(pool)
    started = await combiner.append(_start(job.job_id))
    assert (started.job_id, started.version, started.to_state, started.data) == (job.job_id, 2, "processing",
                                                                                 {"worker_id": "w"})
    with pytest.raises(StaleAttempt):
        await combiner.append(prepare_event("progress", {"percent": 1.0}, job_id=job.job_id, attempt=9, actor="svc"))
    history = await combiner.append_returning_job(prepare_event("progress", {"percent": 2.0}, job_id=job.job_id,
                                                                 actor="svc"))
    assert (history.event.version, [e.version for e in history.since][-1]) == (3, 3)
    assert combiner.rounds_run == 3
