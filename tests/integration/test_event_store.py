"""The event store against real PostgreSQL: lifecycle, races, guards, append-only."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from statemachine import (
    RULES,
    AccessDenied,
    ConcurrencyConflict,
    InvalidTransition,
    JobNotFound,
    StaleAttempt,
    State,
    Trigger,
    ValidationError,
)
from statemachine.check import next_state
from store import EventStore, connect, prepare_event
from tests.support.doorbell import ringing_doorbell
from tests.support.factories import create_data, create_job


async def _count_events(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM vjm.job_events")


async def test_full_lifecycle_is_stored_in_order(store: EventStore) -> None:
    created = await create_job(store)
    assert (created.version, created.to_state, created.attempt) == (1, "queued", 0)
    started = await store.append(prepare_event("start", {"worker_id": "w1"}, job_id=created.job_id))
    assert (started.from_state, started.to_state, started.attempt) == ("queued", "processing", 1)
    await store.append(prepare_event("progress", {"percent": 50, "clips_done": 2},
                                     job_id=created.job_id, attempt=1))
    done = await store.append(prepare_event("complete", {"output_paths": ["/p/1.mp4", "/p/2.mp4"],
                                                         "processing_time": 120},
                                            job_id=created.job_id, attempt=1))
    assert (done.version, done.to_state) == (4, "completed")
    stream = await store.read_stream(created.job_id)
    assert [e.type for e in stream] == ["create", "start", "progress", "complete"]
    assert [e.version for e in stream] == [1, 2, 3, 4]
    assert stream[-1].data == {"output_paths": ["/p/1.mp4", "/p/2.mp4"], "processing_time": 120.0}
    assert all(e.user_id == "user-123" for e in stream)


async def test_fail_retry_and_delete_keep_history(store: EventStore) -> None:
    job = await create_job(store)
    await store.append(prepare_event("start", {}, job_id=job.job_id))
    failed = await store.append(prepare_event("fail", {"error": "Invalid video format"}, job_id=job.job_id))
    assert failed.to_state == "failed"
    retried = await store.append(prepare_event("retry", {}, job_id=job.job_id))
    assert (retried.to_state, retried.attempts_left) == ("queued", 3)
    await store.append(prepare_event("cancel", {}, job_id=job.job_id))
    deleted = await store.append(prepare_event("delete", {}, job_id=job.job_id))
    assert deleted.to_state == "deleted"
    with pytest.raises(InvalidTransition):
        await store.append(prepare_event("retry", {}, job_id=job.job_id))
    assert len(await store.read_stream(job.job_id)) == 6


async def test_two_concurrent_starts_exactly_one_wins(database_url: str, store: EventStore) -> None:
    job = await create_job(store)
    a, b = await connect(database_url), await connect(database_url)
    try:
        # A starts and holds its transaction open; B's start waits for A's hold on the
        # job's queue entry, then finds the job processing: the loser is told why.
        tx = a.transaction()
        await tx.start()
        await EventStore(a).append(prepare_event("start", {"worker_id": "A"}, job_id=job.job_id))
        racer = asyncio.create_task(EventStore(b).append(prepare_event("start", {"worker_id": "B"},
                                                                       job_id=job.job_id)))
        await _wait_until_blocked(store, b)
        await tx.commit()
        with pytest.raises(InvalidTransition) as info:
            await racer
        assert info.value.trigger == "start" and info.value.state == "processing"
    finally:
        await a.close()
        await b.close()
    stream = await store.read_stream(job.job_id)
    assert [(e.type, e.data.get("worker_id")) for e in stream] == [("create", None), ("start", "A")]


async def test_two_writers_on_one_version_conflict(database_url: str, store: EventStore) -> None:
    job = await create_job(store)
    started = await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id))
    a, b = await connect(database_url), await connect(database_url)
    try:
        # Both read the same head; B's insert of the same version waits on A's, then loses.
        tx = a.transaction()
        await tx.start()
        await EventStore(a).append(prepare_event("progress", {"percent": 10.0}, job_id=job.job_id,
                                                 attempt=started.attempt))
        racer = asyncio.create_task(EventStore(b).append(prepare_event("progress", {"percent": 20.0},
                                                                       job_id=job.job_id, attempt=started.attempt)))
        await _wait_until_blocked(store, b)
        await tx.commit()
        with pytest.raises(ConcurrencyConflict):
            await racer
    finally:
        await a.close()
        await b.close()
    stream = await store.read_stream(job.job_id)
    assert [(e.type, e.data.get("percent")) for e in stream][-1] == ("progress", 10.0)
    assert [e.version for e in stream] == [1, 2, 3]


async def _wait_until_blocked(store: EventStore, conn: asyncpg.Connection) -> None:
    pid = conn.get_server_pid()
    async with asyncio.timeout(10):
        while not await store._executor.fetchval(  # noqa: ASYNC110 - polls the server, not a local flag
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
            await asyncio.sleep(0.01)  # poll: wait until B really waits on A's lock


async def test_many_concurrent_starts_one_winner(pool, store: EventStore) -> None:
    job = await create_job(store)
    results = await asyncio.gather(*[
        store.append(prepare_event("start", {"worker_id": f"w{i}"}, job_id=job.job_id)) for i in range(8)
    ], return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(e, (ConcurrencyConflict, InvalidTransition)) for e in losers)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE type = 'start'") == 1


async def test_illegal_transition_names_state_and_trigger(store: EventStore) -> None:
    job = await create_job(store)
    with pytest.raises(InvalidTransition) as info:
        await store.append(prepare_event("complete", {"output_paths": []}, job_id=job.job_id))
    assert info.value.state == "queued" and info.value.trigger == "complete"
    assert "start" in info.value.allowed
    assert len(await store.read_stream(job.job_id)) == 1


async def test_unknown_job_is_not_found(store: EventStore) -> None:
    with pytest.raises(JobNotFound):
        await store.append(prepare_event("start", {}, job_id=uuid.uuid4()))


async def test_expected_version_guards_against_lost_updates(store: EventStore) -> None:
    job = await create_job(store)
    await store.append(prepare_event("update_metadata", {"clip_count": 3}, job_id=job.job_id, expected_version=1))
    with pytest.raises(ConcurrencyConflict):
        await store.append(prepare_event("update_metadata", {"clip_count": 4}, job_id=job.job_id,
                                         expected_version=1))
    assert [e.data.get("clip_count") for e in await store.read_stream(job.job_id)] == [5, 3]


async def test_stale_attempt_is_fenced(store: EventStore) -> None:
    job = await create_job(store, max_attempts=3)
    await store.append(prepare_event("start", {"worker_id": "slow"}, job_id=job.job_id))
    reset = await store.append(prepare_event("time_out", {}, job_id=job.job_id, attempt=1))
    assert reset.to_state == "queued"
    second = await store.append(prepare_event("start", {"worker_id": "fast"}, job_id=job.job_id))
    assert second.attempt == 2
    with pytest.raises(StaleAttempt) as info:
        await store.append(prepare_event("complete", {"output_paths": ["/late.mp4"]}, job_id=job.job_id, attempt=1))
    assert (info.value.held, info.value.current) == (1, 2)
    done = await store.append(prepare_event("complete", {"output_paths": ["/ok.mp4"]}, job_id=job.job_id, attempt=2))
    assert done.to_state == "completed"


async def test_time_out_fails_the_job_when_attempts_are_exhausted(store: EventStore) -> None:
    job = await create_job(store, max_attempts=2)
    for attempt, expected in ((1, "queued"), (2, "failed")):
        await store.append(prepare_event("start", {}, job_id=job.job_id))
        event = await store.append(prepare_event("time_out", {}, job_id=job.job_id, attempt=attempt))
        assert event.to_state == expected
    retried = await store.append(prepare_event("retry", {}, job_id=job.job_id))
    assert retried.attempts_left == 2


@pytest.mark.parametrize("statement", [
    "UPDATE vjm.job_events SET actor = 'mallory'",
    "UPDATE vjm.job_events SET data = '{}' WHERE false",
    "DELETE FROM vjm.job_events",
    "DELETE FROM vjm.job_events WHERE false",
    "TRUNCATE vjm.job_events",
    "TRUNCATE vjm.job_events CASCADE",
])
@pytest.mark.parametrize("replica", [False, True])
async def test_events_are_append_only_even_for_the_owner(pool, store: EventStore, statement: str,
                                                         replica: bool) -> None:
    job = await create_job(store)
    async with pool.acquire() as conn:
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(relowner) = current_user FROM pg_class WHERE oid = 'vjm.job_events'::regclass")
        if not owner:  # the events table is owned by the owner role; act as it
            await conn.execute("SET ROLE vjm_owner")
        if replica:
            await conn.execute("SET session_replication_role = replica")
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute(statement)
        await conn.execute("RESET ALL")
        await conn.execute("RESET ROLE")
    assert [e.actor for e in await store.read_stream(job.job_id)] == ["user-123"]


async def test_append_only_error_translates_to_access_denied(pool) -> None:
    from store import translate_error
    async with pool.acquire() as conn:
        try:
            await conn.execute("DELETE FROM vjm.job_events")
        except asyncpg.PostgresError as exc:
            assert isinstance(translate_error(exc), AccessDenied)
        else:
            pytest.fail("DELETE was allowed")


async def test_database_refuses_illegal_transition_sent_as_raw_sql(pool, store: EventStore) -> None:
    job = await create_job(store)
    # What a processor written in another language sends: the append function, as raw SQL.
    raw = "SELECT version, to_state FROM vjm.append_event($1, $2, '{}'::jsonb, 'go-worker')"
    with pytest.raises(asyncpg.PostgresError, match="cannot complete job .* in state queued") as info:
        await pool.fetchrow(raw, job.job_id, "complete")
    assert info.value.sqlstate == "VJ422" and info.value.detail == "queued"
    with pytest.raises(asyncpg.PostgresError, match="cannot explode"):
        await pool.fetchrow(raw, job.job_id, "explode")
    row = await pool.fetchrow(raw, job.job_id, "start")
    assert tuple(row) == (2, "processing")
    with pytest.raises(asyncpg.PostgresError, match="not found") as info:
        await pool.fetchrow(raw, uuid.uuid4(), "start")
    assert info.value.sqlstate == "VJ404"


async def test_direct_insert_of_an_illegal_row_is_refused_by_constraints(pool, store: EventStore) -> None:
    job = await create_job(store)
    insert = ("INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left,"
              " actor, user_id, prev_hash, hash) VALUES ($1, 2, $2, $3, $4, 0, 3, 'owner', 'u', '\\x00', '\\x00')")
    with pytest.raises(asyncpg.CheckViolationError, match="job_events_legal_transition"):
        await pool.execute(insert, job.job_id, "complete", "queued", "completed")
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute("INSERT INTO vjm.job_events (job_id, version, type, to_state, attempt, attempts_left,"
                           " actor, user_id, hash) VALUES ($1, 1, 'create', 'queued', 0, 3, 'owner', 'u', '\\x00')",
                           job.job_id)
    assert len(await store.read_stream(job.job_id)) == 1


async def test_python_transition_table_equals_database_table(store: EventStore) -> None:
    python = sorted((r.trigger.value, r.from_state.value, r.to_state.value, r.guard.value if r.guard else None)
                    for r in RULES)
    assert sorted(await store.transition_table()) == python


async def test_the_databases_next_state_agrees_with_the_python_machine(pool) -> None:
    cases = [(s, t, left) for s in State for t in Trigger for left in (0, 1, 2)]
    rows = await pool.fetch("SELECT c.i, vjm.next_state(c.t, c.s, c.n) AS to_state"
                            "  FROM unnest($1::int[], $2::text[], $3::text[], $4::smallint[]) AS c(i, t, s, n)",
                            list(range(len(cases))), [t.value for _, t, _ in cases], [s.value for s, _, _ in cases],
                            [n for _, _, n in cases])
    database = {r["i"]: r["to_state"] for r in rows}
    for i, (state, trigger, left) in enumerate(cases):
        try:
            expected = next_state(state, trigger, attempts_left=left).value
        except InvalidTransition:
            expected = None
        assert database[i] == expected, (state, trigger, left)


async def test_bad_payload_writes_nothing(pool, store: EventStore) -> None:
    job = await create_job(store)
    before = await _count_events(pool)
    bad_calls = [
        lambda: prepare_event("create", create_data(clip_count=0), user_id="u"),
        lambda: prepare_event("create", create_data(original_filename="a/b.mp4"), user_id="u"),
        lambda: prepare_event("create", create_data(), user_id=""),
        lambda: prepare_event("start", {"worker_id": "x" * 500}, job_id=job.job_id),
        lambda: prepare_event("fail", {"error": ""}, job_id=job.job_id),
        lambda: prepare_event("start", {}, job_id="not-a-uuid"),
        lambda: prepare_event("progress", {}, job_id=job.job_id, attempt=-1),
        lambda: prepare_event("progress", {}, job_id=job.job_id, attempt="1"),
        lambda: prepare_event("create", create_data(), user_id="u", team_id="team-one"),
    ]
    for call in bad_calls:
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.field
    for data, user in ((json.loads("[1, 2]"), "u"), ({}, ""), ({}, "u" * 129)):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await pool.fetchrow("SELECT position FROM vjm.append_event($1, 'create', $2, 'x', NULL, NULL, $3)",
                                uuid.uuid4(), data, user)
    assert await _count_events(pool) == before


async def test_notify_payload_is_a_small_doorbell(database_url: str, store: EventStore) -> None:
    async with ringing_doorbell(database_url) as doorbells:
        job = await create_job(store, original_filename="secret-plans.mp4")
        payload = await doorbells.next()
    assert payload == {"position": job.position, "count": 1}  # a doorbell: nothing about whose job or what


async def test_bulk_append_is_one_statement(pool, store: EventStore) -> None:
    events = [prepare_event("create", create_data(original_filename=f"v{i}.mp4"), user_id="bulk") for i in range(200)]
    stored = await store.append_creates(events)
    assert len(stored) == 200 and {e.version for e in stored} == {1}
    assert await pool.fetchval("SELECT count(DISTINCT job_id) FROM vjm.job_events WHERE user_id = 'bulk'") == 200


async def test_read_after_returns_events_in_commit_order(store: EventStore) -> None:
    jobs = [await create_job(store) for _ in range(5)]
    events = await store.read_after((0, 0), limit=3)
    rest = await store.read_after(events[-1].cursor, limit=100)
    assert [e.job_id for e in events + rest] == [j.job_id for j in jobs]


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_read_after_never_passes_an_open_transaction(database_url: str, store: EventStore,
                                                           outcome: str) -> None:
    early = await connect(database_url)
    try:
        tx = early.transaction()
        await tx.start()
        held = await EventStore(early).append(prepare_event("create", create_data(), user_id="early"))
        late = await create_job(store, user_id="late")  # commits first, but its transaction began later
        assert await store.read_after((0, 0)) == []
        await (tx.commit() if outcome == "commit" else tx.rollback())
    finally:
        await early.close()
    seen = [e.position for e in await store.read_after((0, 0))]
    assert seen == ([held.position, late.position] if outcome == "commit" else [late.position])
