"""The projector's set-based apply (sql/queries/projector_batch.sql) against the Python fold.

The projector folds the rows in Python (`fold_rows`) and derives the counters, the platform
counters, the change feed and its notices in SQL; rebuild and verify use the Python `fold`
with its Python deltas. For random committed histories, projected in batches of random
sizes (batches that end inside jobs and transactions), after every few batches the live read
models equal the Python fold of every event from nothing and a recount (verify), and the
change feed holds, per batch, one entry per touched job in the commit order of its last
event, numbered without gaps.
"""

from __future__ import annotations

import json
import random

import pytest

from listeners import JobNotice, parse_notice, project_batch
from store import EventStore, connect, prepare_event
from store.identity import connect_as
from store.projections import GENERATED_JOB_COLUMNS, JOB_COLUMNS, JobRow, verify_projections
from tests.support.factories import create_job
from tests.support.waiting import eventually


def _expected_changes(events: list, cursors: list[tuple[int, int]]) -> list[tuple]:
    """What the Python projector wrote: per batch (cursor to cursor), the last event of each job, in commit order."""
    ordered = sorted(events, key=lambda e: e.cursor)
    expected: list[tuple] = []
    start = (0, 0)
    for end in cursors:
        last = {e.job_id: e for e in ordered if start < e.cursor <= end}
        for e in sorted(last.values(), key=lambda e: e.cursor):
            expected.append((len(expected) + 1, e.xact_id, e.position, e.job_id, e.user_id, e.team_id,
                             e.to_state.value, e.version))
        start = end
    return expected


async def _verify_ok(database_url: str) -> None:
    result = await verify_projections(database_url)
    assert result.ok, [d.model_dump() for d in result.differences[:5]]


@pytest.mark.parametrize("seed", [3, 17, 29])
async def test_random_histories_in_random_batches_equal_the_python_fold(database_url: str, pool, workload,
                                                                       seed: int) -> None:
    rng = random.Random(seed)
    events = []
    cursors: list[tuple[int, int]] = []
    conn = await connect_as(database_url, role="vjm_projector")
    try:
        for round_ in range(3):
            events += await workload(jobs=30, seed=seed * 10 + round_, steps=10)
            while (batch := await project_batch(conn, "main", batch_size=rng.choice([1, 2, 5, 13, 40, 1000]),
                                                per_job_limit=rng.choice([0, 3, 10]))).events:
                cursors.append(batch.cursor)
                if rng.random() < 0.15:
                    await _verify_ok(database_url)
            await _verify_ok(database_url)
    finally:
        await conn.close()
    feed = [tuple(r) for r in await pool.fetch(
        "SELECT seq, xact_id, position, job_id, user_id, team_id, status, version FROM vjm.job_changes ORDER BY seq")]
    assert feed == _expected_changes(events, cursors)
    checkpoint = await pool.fetchrow("SELECT events, change_seq FROM vjm.projection_checkpoints WHERE name = 'main'")
    assert (checkpoint["events"], checkpoint["change_seq"]) == (len(events), len(feed))


async def test_a_folded_row_goes_as_a_record_of_vjm_jobs_in_its_column_order(pool) -> None:
    columns = await pool.fetch("SELECT attname FROM pg_attribute WHERE attrelid = 'vjm.jobs'::regclass "
                               "AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
    assert tuple(r["attname"] for r in columns) == JOB_COLUMNS + GENERATED_JOB_COLUMNS
    assert JOB_COLUMNS == tuple(JobRow.model_fields)


async def test_notices_name_each_job_up_to_the_limit_then_one_summary(database_url: str, store: EventStore) -> None:
    listener = await connect(database_url)
    received: list[str] = []
    await listener.add_listener("vjm_jobs", lambda *args: received.append(args[3]))
    conn = await connect_as(database_url, role="vjm_projector")
    try:
        few = [await create_job(store, user_id=f"u{i}") for i in range(3)]
        await store.append(prepare_event("start", {"worker_id": "w"}, job_id=few[0].job_id))
        first = await project_batch(conn, "main", batch_size=100, per_job_limit=3)
        many = [await create_job(store, user_id="v") for _ in range(4)]
        second = await project_batch(conn, "main", batch_size=100, per_job_limit=3)

        async def arrived() -> bool:
            await listener.execute("SELECT 1")  # notifications that arrived are dispatched before the reply
            return len(received) >= 4
        await eventually(arrived)
    finally:
        await conn.close()
        await listener.close()
    assert (first.jobs, first.notifications, second.jobs, second.notifications) == (3, 3, 4, 1)
    notices = [parse_notice(p) for p in received]
    assert [n.job_id for n in notices[:3] if isinstance(n, JobNotice)] == [j.job_id for j in few[1:]] + [few[0].job_id]
    assert notices[0].status == "queued" and notices[2].status == "processing" and notices[2].version == 2
    assert all(n.cursor == first.cursor for n in notices[:3])
    summary = json.loads(received[3])
    assert summary == {"type": "batch", "seq_from": 4, "seq_to": 7, "jobs": 4, "events": len(many),
                       "position": second.cursor[1], "cursor": list(second.cursor)}


async def test_the_batch_statements_keep_one_plan_and_the_rest_plan_for_their_arguments(
        database_url: str, store: EventStore) -> None:
    """The projector's session plans each statement for its arguments (store/role_connection.py), except the read
    and the apply of a batch, whose plans are made once and kept (projection_batch_lock) until discard_plans. The
    lock sets that for its own transaction only: afterwards the session plans for the arguments again."""
    from store.projections import discard_plans
    from store.role_connection import connect_with_role

    conn = await connect_with_role(database_url, "vjm_projector")
    try:
        for round_ in range(8):
            for i in range(3):
                await create_job(store, user_id=f"plan-{round_}-{i}")
            assert (await project_batch(conn, "main", batch_size=1000, per_job_limit=10)).jobs == 3
        plans = {r["statement"]: (r["generic_plans"], r["custom_plans"])
                 for r in await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")}
        apply = next(v for k, v in plans.items() if "INSERT INTO vjm.job_changes" in k)
        read = next(v for k, v in plans.items() if "projection_horizon" in k)
        lock = next(v for k, v in plans.items() if "FOR UPDATE OF c" in k)
        assert apply == (8, 0), apply  # one plan, used by every batch
        assert read == (8, 0), read
        assert lock[0] == 0 and lock[1] >= 8, lock  # before the settings it makes: planned for its arguments
        settings = await conn.fetchrow("SELECT current_setting('plan_cache_mode') AS plans, "
                                       "current_setting('enable_seqscan') AS seqscan")
        assert tuple(settings) == ("force_custom_plan", "on")  # the batch's settings ended with its transaction
        await discard_plans(conn)
        await create_job(store, user_id="plan-after")
        assert (await project_batch(conn, "main", batch_size=1000, per_job_limit=10)).jobs == 1
    finally:
        await conn.close()
    await _verify_ok(database_url)
