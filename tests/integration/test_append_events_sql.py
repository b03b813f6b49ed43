"""vjm.append_events as a Go or Rust processor calls it: exactly one row per item, in item order.

A wrong answer here is silent: a processor that reads 16 rows for 4 items, or an applied
item without its number, cannot tell which of its reports landed.
"""

from __future__ import annotations

import uuid

from store import EventStore, prepare_event
from tests.support.factories import create_data

# The pool's jsonb codec encodes each payload (a dict) as one JSON value.
APPEND_EVENTS = "SELECT * FROM vjm.append_events($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::int[], $6::int[])"


async def _started(store: EventStore, worker: str) -> tuple[uuid.UUID, int]:
    job = await store.append(prepare_event("create", create_data(), user_id="sql-processor"))
    started = await store.append(prepare_event("start", {"worker_id": worker}, job_id=job.job_id))
    return job.job_id, started.attempt


async def test_each_item_has_one_row_with_its_own_event_or_its_refusal(pool, store: EventStore) -> None:
    (first, a1), (second, a2) = await _started(store, "w-1"), await _started(store, "w-2")
    for _ in range(3):  # some history, so that a row per stored event would show
        await store.append(prepare_event("progress", {"percent": 10.0}, job_id=first, attempt=a1))
    items = [(first, "progress", {"percent": 50.0}, a1), (second, "progress", {"percent": 60.0}, a2),
             (first, "complete", {"output_paths": ["/o/1.mp4"]}, a1), (second, "complete", {"output_paths": []}, a2 + 7)]
    rows = await pool.fetch(APPEND_EVENTS, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
                            ["worker"] * 4, [i[3] for i in items], [None] * 4)

    assert [r["item"] for r in rows] == [1, 2, 3, 4]
    assert [r["job_id"] for r in rows] == [i[0] for i in items]
    heads = {job: await pool.fetchval("SELECT max(version) FROM vjm.job_events WHERE job_id = $1", job)
             for job in (first, second)}
    applied, refused = rows[:3], rows[3]
    assert [r["error_code"] for r in applied] == [None, None, None]
    assert [(r["type"], r["version"]) for r in applied] == [("progress", 6), ("progress", 3), ("complete", 7)]
    assert heads == {first: 7, second: 3}  # nothing else was appended
    assert refused["error_code"] == "VJ423" and refused["version"] is None and refused["position"] is None
    stored = await pool.fetchrow("SELECT position, data FROM vjm.job_events WHERE job_id = $1 AND version = 7", first)
    assert (applied[2]["position"], applied[2]["data"]) == (stored["position"], stored["data"])


async def test_a_job_named_three_times_takes_its_items_in_order_whatever_the_others(pool, store: EventStore) -> None:
    (first, a1), (second, a2), (third, a3) = [await _started(store, f"w-{i}") for i in range(3)]
    items = [(third, "progress", {"percent": 5.0}, a3), (first, "progress", {"percent": 10.0}, a1),
             (first, "complete", {"output_paths": []}, a1 + 1),  # stale: refused in the second round
             (second, "progress", {"percent": 20.0}, a2), (first, "complete", {"output_paths": []}, a1),
             (second, "progress", {"percent": 30.0}, a2)]
    rows = await pool.fetch(APPEND_EVENTS, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
                            ["worker"] * len(items), [i[3] for i in items], [None] * len(items))

    assert [r["item"] for r in rows] == list(range(1, len(items) + 1))
    assert [r["job_id"] for r in rows] == [i[0] for i in items]
    assert [r["error_code"] for r in rows] == [None, None, "VJ423", None, None, None]
    assert [(r["type"], r["version"]) for r in rows] == [("progress", 3), ("progress", 3), (None, None),
                                                         ("progress", 3), ("complete", 4), ("progress", 4)]
    assert [r["data"] for r in rows] == [i[2] if n != 2 else None for n, i in enumerate(items)]
    stored = await pool.fetch("SELECT job_id, version, position FROM vjm.job_events WHERE version > 2 "
                              "AND job_id = ANY($1::uuid[]) ORDER BY job_id, version", [first, second, third])
    assert {(r["job_id"], r["version"]): r["position"] for r in stored} == {
        (r["job_id"], r["version"]): r["position"] for r in rows if r["version"]}


async def test_an_empty_call_appends_nothing_and_returns_no_row(pool) -> None:
    assert await pool.fetch(APPEND_EVENTS, [], [], [], [], [], []) == []
