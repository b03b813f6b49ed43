"""The guard's batches (vjm.guard_append, three transitions or more): judged as one item is, written as a set.

A batch of three or more transitions is judged and appended in one statement (sql/schema/060_write_api.sql);
one or two items go one by one. These tests hold the batch to the one-item answers: the same refusals with the
same words, the same events and the same run queue; a job named twice sees its first item's head; a refused
item in the middle leaves the others applied; and an item that loses a race on the (job_id, version) index is
judged again on the winner's head, so that concurrent batches lose nothing and write nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from store import EventStore, prepare_event
from store.identity import AUTHENTICATED, acting_as
from tests.support.factories import create_data
from tests.support.waiting import eventually

# The payloads as JSON texts: one of them is an array, which asyncpg would read as a dimension of jsonb[].
APPEND_EVENTS = ("SELECT * FROM vjm.append_events($1::uuid[], $2::text[], $3::text[]::jsonb[], $4::text[], $5::int[], "
                 "$6::int[])")
GUARD = ("SELECT vjm.guard_append($1::uuid[], $2::text[], $3::text::jsonb, $4::text[], $5::int[], $6::int[], $7::text[], "
         "$8::uuid[], false, $9)")
BLOCKED_BEHIND = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))"
OUT = {"output_paths": ["/out/1.mp4"]}

# Each case: how its job is set up (the triggers before), then the item the batch sends for it:
# trigger, payload, actor (None: the guard finds one, or refuses), attempt (None: the current), expected version.
CASES: list[tuple[list[str], tuple[str, Any, str | None, Any, Any]]] = [
    ([], ("start", {"worker_id": "w-1"}, "proc", None, None)),
    (["start"], ("progress", {"percent": 10.0}, None, None, None)),  # actor: the attempt's worker
    (["start"], ("progress", {"percent": 10.0}, "proc", "stale", None)),  # VJ423
    (["start"], ("complete", OUT, "proc", None, None)),
    (["start"], ("requeue", {"retry_after": 30}, "proc", None, None)),  # queued, held back 30 s
    (["start"], ("release", {}, "proc", None, None)),  # gives back the attempt
    (["start", "fail"], ("retry", {}, "admin", None, None)),  # the budget again
    ([], ("update_metadata", {"platform_target": "youtube_shorts"}, "admin", None, None)),
    ([], ("cancel", {}, None, None, None)),  # nobody to record: 'actor' (22023)
    ([], ("complete", OUT, "proc", None, None)),  # VJ422
    (["start"], ("progress", {"percent": 20.0}, "proc", None, 1)),  # VJ409: the head is at 2
    (["start"], ("progress", {"percent": 500.0}, "proc", None, None)),  # payload rules: 42501
    (["start"], ("time_out", {"reason": "quiet"}, "proc", None, None)),  # back to the queue
    (["start"], ("fail", {"error": "boom"}, "proc", None, None)),
    ([], ("cancel", {"reason": "no"}, "admin", None, None)),
    (["start", "requeue"], ("cancel", {}, "admin", None, None)),  # held back by a requeue: keeps its time
    (["start"], ("progress", [1, 2], "proc", None, None)),  # not an object: 22023
    (None, ("progress", {"percent": 1.0}, "proc", None, None)),  # no such job: VJ404
]
SETUP = {"start": {"worker_id": "w-setup"}, "fail": {"error": "first try"}, "complete": OUT,
         "requeue": {"retry_after": 600}}


async def _world(conn: asyncpg.Connection, user: str) -> list[uuid.UUID]:
    """One job per case, in the state its case names (the last case's job never exists)."""
    store, jobs = EventStore(conn), []
    for before, _ in CASES:
        if before is None:
            jobs.append(uuid.uuid4())
            continue
        job = await store.append(prepare_event("create", create_data(), user_id=user, actor=user))
        attempt = None
        for trigger in before:
            event = await store.append(prepare_event(trigger, SETUP[trigger], job_id=job.job_id, actor="setup",
                                                     attempt=attempt))
            attempt = event.attempt
        jobs.append(job.job_id)
    return jobs


async def _items(conn: asyncpg.Connection, jobs: list[uuid.UUID], cases: list[int]) -> list[list[Any]]:
    """The argument arrays of vjm.append_events for these cases of `jobs`."""
    columns: list[list[Any]] = [[], [], [], [], [], []]
    for n in cases:
        trigger, data, actor, attempt, expected = CASES[n][1]
        current = await conn.fetchval("SELECT attempt FROM vjm.job_events WHERE job_id = $1 ORDER BY version DESC "
                                      "LIMIT 1", jobs[n])
        attempt = (current or 0) + 5 if attempt == "stale" else current
        for column, value in zip(columns, (jobs[n], trigger, json.dumps(data), actor, attempt, expected), strict=True):
            column.append(value)
    return columns


def _answer(row: asyncpg.Record, jobs: list[uuid.UUID]) -> tuple:
    """One item's answer, with the world's job ids replaced by their case number."""
    names = {str(job): f"<job {n}>" for n, job in enumerate(jobs)}

    def plain(text: str | None) -> str | None:
        for job, name in names.items():
            text = text.replace(job, name) if text else text
        return text

    return (row["error_code"], plain(row["error_message"]), row["error_detail"], row["error_hint"], row["version"],
            row["type"], row["from_state"], row["to_state"], row["attempt"], row["attempts_left"], row["actor"])


QUEUE_ROW = """
SELECT q.queued, q.processing, q.platform_target, q.max_attempts, q.priority, q.worker,
       round(extract(epoch FROM q.not_before - h.occurred_at)) AS held_for
  FROM vjm.run_queue q
  JOIN LATERAL (SELECT e.occurred_at FROM vjm.job_events e WHERE e.job_id = q.job_id ORDER BY e.version DESC
                 LIMIT 1) h ON true
 WHERE q.job_id = $1
"""


async def _queue(conn: asyncpg.Connection, jobs: list[uuid.UUID]) -> list[tuple | None]:
    return [tuple(r) if (r := await conn.fetchrow(QUEUE_ROW, job)) else None for job in jobs]


async def test_a_batch_answers_each_item_as_one_item_would_be_answered(pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SET vjm.principal = ''")  # a trusted caller that names no actor for a cancel: refused
        batch_jobs, single_jobs = await _world(conn, "batch-user"), await _world(conn, "single-user")
        every = list(range(len(CASES)))
        batch = await conn.fetch(APPEND_EVENTS, *await _items(conn, batch_jobs, every))
        single = [(await conn.fetch(APPEND_EVENTS, *await _items(conn, single_jobs, [n])))[0] for n in every]
        assert [_answer(r, batch_jobs) for r in batch] == [_answer(r, single_jobs) for r in single]
        assert [r["item"] for r in batch] == list(range(1, len(every) + 1))
        assert {r["error_code"] for r in batch} == {None, "VJ423", "VJ422", "VJ409", "VJ404", "42501", "22023"}
        assert await _queue(conn, batch_jobs) == await _queue(conn, single_jobs)
        # Every event the batch wrote extends its job's hash chain.
        assert await conn.fetchval("""
            SELECT bool_and(e.hash = vjm.event_hash(e.prev_hash, e.job_id, e.version, e.type, e.from_state, e.to_state,
                                                    e.attempt, e.data, e.actor, e.user_id, e.team_id, e.occurred_at)
                            AND e.prev_hash = p.hash)
              FROM vjm.job_events e JOIN vjm.job_events p ON p.job_id = e.job_id AND p.version = e.version - 1
             WHERE e.job_id = ANY ($1::uuid[])""", batch_jobs)


async def test_an_end_users_batch_is_refused_as_their_single_appends_are(pool) -> None:
    async def world(me: str, other: str) -> list[uuid.UUID]:
        store = EventStore(pool)
        mine = [(await store.append(prepare_event("create", create_data(), user_id=me, actor=me))).job_id
                for _ in range(3)]
        theirs = (await store.append(prepare_event("create", create_data(), user_id=other, actor=other))).job_id
        return [mine[0], theirs, mine[1], mine[2], uuid.uuid4()]

    items = [("cancel", {"reason": "mine"}), ("cancel", {}), ("update_metadata", {"platform_target": "instagram"}),
             ("retry", {}), ("cancel", {})]  # another's job and a missing one: VJ404 alike; a retry of a queued job

    async def send(me: str, jobs: list[uuid.UUID], numbers: list[int]) -> list[asyncpg.Record]:
        async with acting_as(pool, role=AUTHENTICATED, user_id=me) as conn:
            return await conn.fetch(APPEND_EVENTS, [jobs[n] for n in numbers], [items[n][0] for n in numbers],
                                    [json.dumps(items[n][1]) for n in numbers], [None] * len(numbers),
                                    [None] * len(numbers), [None] * len(numbers))

    batch_jobs, single_jobs = await world("erin", "frank"), await world("gina", "hank")
    batch = await send("erin", batch_jobs, list(range(len(items))))
    single = [(await send("gina", single_jobs, [n]))[0] for n in range(len(items))]
    assert [_answer(r, batch_jobs)[:-1] for r in batch] == [_answer(r, single_jobs)[:-1] for r in single]
    assert [r["error_code"] for r in batch] == [None, "VJ404", None, "VJ422", "VJ404"]
    assert [r["actor"] for r in batch] == ["erin", None, "erin", None, None]
    async with pool.acquire() as conn:
        assert await _queue(conn, batch_jobs) == await _queue(conn, single_jobs)


async def test_a_refused_item_in_the_middle_leaves_the_items_around_it_applied(pool) -> None:
    async with pool.acquire() as conn:
        jobs = await _world(conn, "u")
        cases = [1, 3, 9, 12, 13]  # progress, complete, complete on a queued job (VJ422), time_out, fail
        rows = await conn.fetch(APPEND_EVENTS, *await _items(conn, jobs, cases))
        assert [r["error_code"] for r in rows] == [None, None, "VJ422", None, None]
        assert [r["version"] for r in rows] == [3, 3, None, 3, 3]
        stored = await conn.fetch("SELECT job_id, version, position FROM vjm.job_events WHERE job_id = ANY ($1::uuid[]) "
                                  "AND version = 3", [jobs[n] for n in cases])
        assert {(r["job_id"], r["position"]) for r in stored} == {(r["job_id"], r["position"]) for r in rows
                                                                  if r["version"]}
        assert await conn.fetchval("SELECT max(version) FROM vjm.job_events WHERE job_id = $1", jobs[9]) == 1


async def test_a_job_named_twice_takes_its_second_item_on_the_head_its_first_left(pool) -> None:
    async with pool.acquire() as conn:
        store = EventStore(conn)
        jobs = [(await store.append(prepare_event("create", create_data(), user_id="u", actor="u"))).job_id
                for _ in range(3)]
        rows = await conn.fetch(APPEND_EVENTS, [jobs[0], jobs[1], jobs[2], jobs[0]], ["start", "start", "start",
                                                                                        "progress"],
                                ['{"worker_id": "w"}'] * 3 + ['{"percent": 5.0}'], ["proc"] * 4, [None, None, None, 1],
                                [None] * 4)
        assert [(r["error_code"], r["type"], r["version"], r["to_state"]) for r in rows] == [
            (None, "start", 2, "processing")] * 3 + [(None, "progress", 3, "processing")]
        # The guard itself takes a job once per call: vjm.append_events splits the items into rounds.
        with pytest.raises(asyncpg.InvalidParameterValueError, match="a job may appear once per call"):
            await conn.fetchval(GUARD, [jobs[0], jobs[1], jobs[0]], ["progress"] * 3, "[{}, {}, {}]", ["p"] * 3,
                                [1] * 3, [None] * 3, [None] * 3, [None] * 3, False)


async def test_a_strict_batch_raises_its_first_refusal_and_appends_nothing(pool) -> None:
    async with pool.acquire() as conn:
        jobs = await _world(conn, "u")
        ids, types, data, actors, attempts, expected = await _items(conn, jobs, [1, 9, 2, 3])
        with pytest.raises(asyncpg.PostgresError, match="cannot complete job") as refused:
            await conn.fetchval(GUARD, ids, types, f"[{', '.join(data)}]", actors, attempts, expected, [None] * 4,
                                [None] * 4, True)
        assert refused.value.sqlstate == "VJ422"
        assert await conn.fetchval("SELECT count(*) FROM vjm.job_events WHERE job_id = ANY ($1::uuid[]) AND version > 2",
                                   ids) == 0


async def _processing(conn: asyncpg.Connection, count: int) -> list[uuid.UUID]:
    store = EventStore(conn)
    jobs = []
    for _ in range(count):
        job = await store.append(prepare_event("create", create_data(), user_id="u", actor="u"))
        await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id, actor="w"))
        jobs.append(job.job_id)
    return jobs


async def _progress(conn: asyncpg.Connection, jobs: list[uuid.UUID], expected: list[int | None] | None = None,
                    trigger: str = "progress") -> list[asyncpg.Record]:
    data = json.dumps({"percent": 50.0} if trigger == "progress" else OUT)
    return await conn.fetch(APPEND_EVENTS, jobs, [trigger] * len(jobs), [data] * len(jobs), ["proc"] * len(jobs),
                            [1] * len(jobs), expected or [None] * len(jobs))


@pytest.mark.parametrize("winner", ["progress", "complete"])
async def test_an_item_that_loses_a_race_is_judged_again_on_the_winners_head(pool, winner: str) -> None:
    async with pool.acquire() as setup:
        jobs = await _processing(setup, 4)
    async with pool.acquire() as holder, pool.acquire() as batcher:
        tx = holder.transaction()
        await tx.start()
        await _progress(holder, jobs[:1], trigger=winner)  # version 3 of jobs[0], not committed yet
        # The batch reads version 2 as the head of jobs[0] and waits on the index for the holder's version 3.
        batch = asyncio.create_task(_progress(batcher, jobs))
        await eventually(lambda: pool.fetchval(BLOCKED_BEHIND, holder.get_server_pid()), what="the batch waiting")
        await tx.commit()
        rows = await asyncio.wait_for(batch, 20)
    heads = [[r["type"] for r in await pool.fetch("SELECT type FROM vjm.job_events WHERE job_id = $1 ORDER BY version",
                                                  job)] for job in jobs]
    if winner == "progress":  # nothing wrong with it on the winner's head: sent again (vjm.append_events), applied
        assert [(r["error_code"], r["version"]) for r in rows] == [(None, 4), (None, 3), (None, 3), (None, 3)]
        assert heads[0] == ["create", "start", "progress", "progress"]
    else:  # the winner completed the job: the loser is refused with the reason the winner's head gives
        assert rows[0]["error_code"] == "VJ422" and rows[0]["error_detail"] == "completed"
        assert heads[0] == ["create", "start", "complete"]
    assert heads[1:] == [["create", "start", "progress"]] * 3


async def test_a_loser_that_names_its_expected_version_is_refused_with_the_winners_version(pool) -> None:
    async with pool.acquire() as setup:
        jobs = await _processing(setup, 3)
    async with pool.acquire() as holder, pool.acquire() as batcher:
        tx = holder.transaction()
        await tx.start()
        await _progress(holder, jobs[:1])
        batch = asyncio.create_task(_progress(batcher, jobs, expected=[2, 2, 2]))
        await eventually(lambda: pool.fetchval(BLOCKED_BEHIND, holder.get_server_pid()), what="the batch waiting")
        await tx.commit()
        rows = await asyncio.wait_for(batch, 20)
    assert [r["error_code"] for r in rows] == ["VJ409", None, None]
    assert rows[0]["error_message"] == f"job {jobs[0]} is at version 3, expected 2"


async def test_concurrent_batches_on_the_same_jobs_lose_nothing_and_write_nothing_twice(pool) -> None:
    async with pool.acquire() as setup:
        jobs = await _processing(setup, 10)
    async with pool.acquire() as holder, pool.acquire() as first, pool.acquire() as second:
        tx = holder.transaction()
        await tx.start()
        await _progress(holder, jobs)  # every job's version 3, held: both batches read version 2 and wait on it
        batches = [asyncio.create_task(_progress(conn, jobs)) for conn in (first, second)]
        await eventually(lambda: pool.fetchval("SELECT $1 = count(*) FROM pg_stat_activity "
                                               "WHERE $2 = ANY (pg_blocking_pids(pid))", 2, holder.get_server_pid()),
                         what="both batches waiting")
        await tx.commit()
        results = await asyncio.wait_for(asyncio.gather(*batches), 30)
    applied = [r for rows in results for r in rows if r["error_code"] is None]
    refused = [r for rows in results for r in rows if r["error_code"] is not None]
    assert {r["error_code"] for r in refused} <= {"VJ409"}  # lost three races in a row: 'race', not written
    stored = await pool.fetch("SELECT job_id, version, position FROM vjm.job_events WHERE job_id = ANY ($1::uuid[]) "
                              "AND version > 3", jobs)
    assert sorted((r["job_id"], r["version"], r["position"]) for r in applied) == sorted(tuple(r) for r in stored)
    assert len(applied) + len(refused) == 20 and len(applied) >= 10  # each job: one batch at least got through
    versions = await pool.fetch("SELECT job_id, array_agg(version ORDER BY version) AS v FROM vjm.job_events "
                                "WHERE job_id = ANY ($1::uuid[]) GROUP BY job_id", jobs)
    assert all(r["v"] == list(range(1, len(r["v"]) + 1)) for r in versions)


async def test_a_batch_of_reschedules_gives_a_users_jobs_their_next_turns_one_after_another(pool) -> None:
    async with pool.acquire() as conn:
        store = EventStore(conn)
        jobs = [(await store.append(prepare_event("create", create_data(), user_id="u", actor="u"))).job_id
                for _ in range(3)]
        rows = await conn.fetch(APPEND_EVENTS, jobs, ["reschedule"] * 3, ['{"priority": 5}'] * 3, ["admin"] * 3,
                                [None] * 3, [None] * 3)
        assert [r["error_code"] for r in rows] == [None] * 3
        turns = [await conn.fetchval("SELECT turn FROM vjm.run_queue WHERE job_id = $1 AND priority = 5", job)
                 for job in jobs]
        assert turns == [turns[0], turns[0] + 1, turns[0] + 2]  # as three reschedules one by one
