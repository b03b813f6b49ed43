"""A write costs the same whatever the job's history: counted in rows read, not in time.

Each write reads the job's head event and, to hand back the job as it is after the
write, its projected row and the events the projection has not applied yet
(vjm.jobs_before). None of it grows with the number of events a job has. The rows
read are PostgreSQL's own per-transaction counters (pg_stat_xact_user_tables), taken
around one write in a transaction that is then rolled back.
"""

from __future__ import annotations

import asyncpg

from store import EventStore, connect, prepare_event
from store.queries import named_query
from tests.support.factories import create_data

ROWS_READ = """
SELECT relname, seq_tup_read, coalesce(idx_tup_fetch, 0) AS idx_tup_fetch
  FROM pg_stat_xact_user_tables WHERE schemaname = 'vjm'
"""
HISTORY = 3000


async def _measure(conn: asyncpg.Connection, query: str, *args) -> dict[str, tuple[int, int]]:
    """Rows each vjm table gave to one statement (seq_tup_read, idx_tup_fetch); the statement is rolled back."""
    tx = conn.transaction()
    await tx.start()
    try:
        before = {r["relname"]: (r["seq_tup_read"], r["idx_tup_fetch"]) for r in await conn.fetch(ROWS_READ)}
        await conn.fetch(query, *args)
        after = {r["relname"]: (r["seq_tup_read"], r["idx_tup_fetch"]) for r in await conn.fetch(ROWS_READ)}
    finally:
        await tx.rollback()
    delta = {name: (seq - before.get(name, (0, 0))[0], idx - before.get(name, (0, 0))[1])
             for name, (seq, idx) in after.items()}
    return {name: rows for name, rows in delta.items() if rows != (0, 0)}


async def _started_job(store: EventStore):
    job = await store.append(prepare_event("create", create_data(), user_id="cost"))
    await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id))
    return job.job_id


async def test_a_write_reads_the_same_rows_for_3_events_and_for_3000(database_url: str, pool, store: EventStore,
                                                                      make_projector) -> None:
    small, big = await _started_job(store), await _started_job(store)
    await pool.execute(f"DO $$ BEGIN FOR i IN 1 .. {HISTORY - 2} LOOP PERFORM vjm.append_event('{big}', 'progress', "
                       "'{\"percent\": 1}', NULL, NULL, 1); END LOOP; END $$")
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events WHERE job_id = $1", big) == HISTORY
    await make_projector().run_once()  # the projection has caught up, as it has in a running system
    append, append_many = named_query("event_append_with_job"), named_query("event_append_many")

    def one(job, trigger, data, actor):
        return append.args({"job_id": job, "trigger": trigger, "data": data, "actor": actor, "expected_version": None,
                            "attempt": 1, "user_id": None, "team_id": None})

    conn = await connect(database_url)
    try:
        progress = {job: await _measure(conn, append.sql, *one(job, "progress", {"percent": 50.0}, "w"))
                    for job in (small, big)}
        timed_out = {job: await _measure(conn, append.sql, *one(job, "time_out", {"reason": "stuck"}, "detector"))
                     for job in (small, big)}
        batch = {job: await _measure(conn, append_many.sql, *append_many.args({
                     "job_ids": [job], "triggers": ["complete"], "data": [{"output_paths": []}], "actors": ["w"],
                     "attempts": [1], "expected_versions": [None]})) for job in (small, big)}
    finally:
        await conn.close()
    for per_job in (progress, timed_out, batch):
        assert per_job[small] == per_job[big]
        assert 0 < sum(seq + idx for seq, idx in per_job[big].values()) < 20  # a replay would read 3,000
