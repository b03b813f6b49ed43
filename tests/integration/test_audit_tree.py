"""The log-wide Merkle tree and signed heads (issue 15, finding 8): completeness is provable.

A head signed over the log must fail to verify after a hostile DBA (a superuser who disables
the append-only trigger, as the tests do here on purpose) deletes a job's tail event, deletes
a whole job, edits an event (with or without recomputing its hash), swaps the commit order of
two events, or truncates the log -- and verify must name the first leaf that changed. The
expected leaf and position are read from the sealed tree before the tampering, never copied
from a run. Proofs are checked with store.tree_heads alone (no database).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from store import EventStore, merkle, prepare_event
from store import connect as connect_raw
from store.audit import seal
from store.tree_heads import TreeHead, check_proof, sign_head
from tests.support.factories import create_data
from tests.support.waiting import eventually
from videojobs import Settings, VideoJobManager, connect

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()


@pytest.fixture
async def auditor(database_url: str) -> AsyncIterator[VideoJobManager]:
    """A manager without listeners: nothing but the test's own statements touches the log."""
    async with connect(settings=Settings(database_url=database_url), listeners=False) as manager:
        yield manager


def public(key: Ed25519PrivateKey) -> bytes:
    return sign_head(key, 0, merkle.EMPTY_ROOT).public_key


async def independent_root(pool: asyncpg.Pool, size: int) -> bytes:
    """The RFC root over the first `size` events in commit order, straight from their stored hashes."""
    hashes = await pool.fetch("SELECT hash FROM vjm.job_events ORDER BY xact_id, position LIMIT $1", size)
    return merkle.root_of(merkle.leaf_hash(r["hash"]) for r in hashes)


async def as_hostile_dba(pool: asyncpg.Pool, sql: str, *args) -> None:
    """What a superuser can do: switch the append-only trigger off, change the log, switch it back on."""
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE vjm.job_events DISABLE TRIGGER job_events_append_only")
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.execute("ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only")


async def leaves(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """The sealed tree: leaf_index, position, job_id per event, in tree order."""
    return await pool.fetch("SELECT l.leaf_index, l.position, l.job_id, e.xact_id, "
                            "       count(*) OVER (PARTITION BY l.job_id) AS job_events, "
                            "       row_number() OVER (PARTITION BY l.job_id ORDER BY e.version DESC) AS from_tail "
                            "  FROM vjm.audit_leaves l JOIN vjm.job_events e USING (position) ORDER BY l.leaf_index")


async def sealed_all(pool: asyncpg.Pool) -> int:
    """Seal until every committed event is a leaf (another database's open transaction may hold the horizon)."""
    total = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    await eventually(lambda: _sealed_up_to(pool, total))
    return total


async def _sealed_up_to(pool: asyncpg.Pool, total: int) -> bool:
    return await seal(pool) == total


async def one_job(store: EventStore, n: int) -> None:
    """A job of 1 to 5 events: create, then start, progress, complete or fail, by n."""
    head = await store.append(prepare_event("create", create_data(), user_id=f"user{n % 3}", actor=f"user{n % 3}"))
    for trigger, data in [("start", {"worker_id": "w1"}), ("progress", {"percent": 50, "clips_done": 1}),
                          ("complete", {"output_paths": ["/out/1.mp4"]}) if n % 5 == 3
                          else ("fail", {"error": "Invalid video format"}),
                          ("retry", {})][:n % 5]:
        fenced = trigger in ("progress", "complete", "fail")
        head = await store.append(prepare_event(trigger, data, job_id=head.job_id,
                                                attempt=head.attempt if fenced else None))


@pytest.fixture
async def signed(auditor: VideoJobManager, store: EventStore, pool) -> TreeHead:
    await asyncio.gather(*(one_job(store, n) for n in range(12)))  # interleaved: jobs mix in commit order
    await sealed_all(pool)
    head = await auditor.audit.sign_tree_head(KEY)
    assert head.tree_size == await pool.fetchval("SELECT count(*) FROM vjm.job_events") > 12
    return head


async def test_a_signed_head_covers_every_event_in_commit_order_and_verifies(auditor, signed, pool) -> None:
    assert signed.root_hash == await independent_root(pool, signed.tree_size)
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert report.ok and report.root_matches and report.signature_ok and report.problem is None
    assert report.leaves_checked == signed.tree_size and report.archived_leaves == 0
    # The database keeps the head for later proofs, exactly as signed.
    assert (await auditor.audit.latest_tree_head()) == signed
    # The same head under another pinned key, or with a forged root, fails.
    pinned_other = await auditor.audit.verify_tree_head(signed, public(OTHER_KEY))
    assert not pinned_other.ok and not pinned_other.signature_ok and "signature" in pinned_other.problem
    forged = TreeHead(signed.tree_size, hashlib.sha256(b"x").digest(), signed.timestamp, signed.public_key,
                      signed.signature)
    assert not (await auditor.audit.verify_tree_head(forged)).ok


async def test_events_after_the_head_keep_it_valid_and_the_next_head_extends_it(auditor, signed, store, pool) -> None:
    await store.append(prepare_event("create", create_data(), user_id="zed", actor="zed"))
    assert (await auditor.audit.verify_tree_head(signed, public(KEY))).ok
    await sealed_all(pool)
    newer = await auditor.audit.sign_tree_head(KEY)
    assert newer.tree_size == signed.tree_size + 1
    proof = await auditor.audit.consistency_proof(signed, newer)
    assert merkle.verify_consistency(signed.tree_size, newer.tree_size, signed.root_hash, newer.root_hash, proof)
    assert not merkle.verify_consistency(signed.tree_size, newer.tree_size, hashlib.sha256(b"x").digest(),
                                         newer.root_hash, proof)


def first_of_job(rows, job_id):
    return next(r for r in rows if r["job_id"] == job_id)


async def test_deleting_a_jobs_tail_event_is_detected(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    # A job's last event that is not the log's last event: the per-job chain cannot see it go.
    victim = next(r for r in rows[:-1] if r["from_tail"] == 1 and r["job_events"] > 1)
    await as_hostile_dba(pool, "DELETE FROM vjm.job_events WHERE position = $1", victim["position"])
    assert (await auditor.audit.verify_history()).ok  # the chain alone is blind to it
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and report.signature_ok and not report.root_matches
    assert (report.leaf_index, report.position, report.job_id) == (victim["leaf_index"], victim["position"],
                                                                    victim["job_id"])
    assert "missing (deleted)" in report.problem


async def test_deleting_a_whole_job_is_detected(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    job_id = rows[len(rows) // 2]["job_id"]
    await as_hostile_dba(pool, "DELETE FROM vjm.job_events WHERE job_id = $1", job_id)
    assert (await auditor.audit.verify_history()).ok
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    first = first_of_job(rows, job_id)
    assert not report.ok and (report.leaf_index, report.position) == (first["leaf_index"], first["position"])
    assert report.job_id == job_id and "missing (deleted)" in report.problem


async def test_editing_an_event_is_detected(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    victim = rows[3]
    await as_hostile_dba(pool, "UPDATE vjm.job_events SET actor = 'someone else' WHERE position = $1",
                         victim["position"])
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and (report.leaf_index, report.position) == (victim["leaf_index"], victim["position"])
    assert "does not match its hash (edited)" in report.problem


async def test_editing_an_event_and_recomputing_its_hash_is_detected(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    victim = next(r for r in rows[:-1] if r["from_tail"] == 1)  # a job's last event: its chain stays whole
    await as_hostile_dba(pool, """
        UPDATE vjm.job_events SET actor = 'someone else',
               hash = vjm.event_hash(prev_hash, job_id, version, type, from_state, to_state, attempt, data,
                                     'someone else', user_id, team_id, occurred_at)
         WHERE position = $1""", victim["position"])
    assert (await auditor.audit.verify_history()).ok  # a consistent forgery of the chain
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and (report.leaf_index, report.position) == (victim["leaf_index"], victim["position"])
    assert "edited, hash recomputed" in report.problem


async def test_swapping_the_commit_order_of_two_events_is_detected(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    a = rows[2]
    b = next(r for r in rows[3:] if r["xact_id"] != a["xact_id"] and r["job_id"] != a["job_id"])
    await as_hostile_dba(pool, """
        UPDATE vjm.job_events SET xact_id = CASE position WHEN $1 THEN $4::xid8 ELSE $3::xid8 END
         WHERE position IN ($1, $2)""", a["position"], b["position"], a["xact_id"], b["xact_id"])
    assert (await auditor.audit.verify_history()).ok  # every event is intact; only the order changed
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and (report.leaf_index, report.position) == (a["leaf_index"], a["position"])
    assert "reordered" in report.problem


async def test_truncating_the_log_is_detected(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    cut = rows[-3]
    await as_hostile_dba(pool, "DELETE FROM vjm.job_events WHERE position = ANY($1::bigint[])",
                         [r["position"] for r in rows[-3:]])
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and report.leaves_checked == signed.tree_size - 3
    assert (report.leaf_index, report.position) == (cut["leaf_index"], cut["position"])
    assert "truncated" in report.problem


async def test_a_forged_event_backdated_into_the_sealed_range_is_detected(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    create = next(r for r in rows if r["from_tail"] == r["job_events"])  # a job's create event
    # Its own job, version 1, a correct hash, and the xact_id of an early commit: a consistent forgery.
    await pool.execute("""
        INSERT INTO vjm.job_events (xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
                                    data, actor, user_id, team_id, occurred_at, prev_hash, hash)
        SELECT e.xact_id, f.job_id, 1, e.type, e.from_state, e.to_state, e.attempt, e.attempts_left, e.data,
               'forger', e.user_id, e.team_id, e.occurred_at, NULL,
               vjm.event_hash(NULL, f.job_id, 1, e.type, e.from_state, e.to_state, e.attempt, e.data, 'forger',
                              e.user_id, e.team_id, e.occurred_at)
          FROM vjm.job_events e, (SELECT gen_random_uuid() AS job_id) f WHERE e.position = $1""", create["position"])
    assert (await auditor.audit.verify_history()).ok
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    after = max(r["leaf_index"] for r in rows if r["xact_id"] == create["xact_id"]) + 1
    assert not report.ok and report.leaf_index == after and "inserted" in report.problem


async def test_a_hostile_dba_who_rewrites_the_sealed_leaves_too_is_still_caught(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    job_id = rows[1]["job_id"]
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE vjm.audit_leaves DISABLE TRIGGER audit_leaves_append_only")
        await conn.execute("TRUNCATE vjm.audit_leaves")  # the cache is gone; the signed root is not
        await conn.execute("ALTER TABLE vjm.audit_leaves ENABLE ALWAYS TRIGGER audit_leaves_append_only")
    intact = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert intact.ok and any("sealed leaves differ" in n for n in intact.notes)
    await as_hostile_dba(pool, "DELETE FROM vjm.job_events WHERE job_id = $1", job_id)
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and not report.root_matches


async def test_inclusion_proofs_verify_offline_and_refuse_forgeries(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    job_id = max(rows, key=lambda r: r["job_events"])["job_id"]
    proof = await auditor.audit.prove_job(job_id, signed)
    assert [e["leaf_index"] for e in proof["events"]] == [r["leaf_index"] for r in rows if r["job_id"] == job_id]
    result = check_proof(proof, signed, public(KEY))
    assert result.ok and result.checked == len(proof["events"]) > 1, result.problems
    # A flipped path hash, an event's hash changed, a dropped event, another head: all refused.
    broken = {**proof, "events": [dict(e) for e in proof["events"]]}
    path = broken["events"][0]["audit_path"]
    broken["events"][0]["audit_path"] = [("0" if path[0][0] != "0" else "1") + path[0][1:], *path[1:]]
    assert not check_proof(broken, signed).ok
    rehashed = {**proof, "events": [dict(e) for e in proof["events"]]}
    rehashed["events"][-1]["hash"] = hashlib.sha256(b"other content").hexdigest()
    assert not check_proof(rehashed, signed).ok
    dropped = {**proof, "events": proof["events"][1:]}
    assert any("chain" in p for p in check_proof(dropped, signed).problems)
    other = sign_head(OTHER_KEY, signed.tree_size, signed.root_hash)
    assert not check_proof(proof, other, public(KEY)).ok


async def test_sealing_follows_commit_order_below_the_horizon(auditor, store, pool, database_url) -> None:
    """The guard writes no leaf; an open transaction holds sealing back; leaves follow commit order."""
    first = await store.append(prepare_event("create", create_data(), user_id="u1", actor="u1"))
    assert await pool.fetchval("SELECT count(*) FROM vjm.audit_leaves") == 0  # nothing on the write path
    slow = await connect_raw(database_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        early = await EventStore(slow).append(prepare_event("create", create_data(), user_id="u2", actor="u2"))
        late = await store.append(prepare_event("create", create_data(), user_id="u3", actor="u3"))
        await eventually(lambda: _sealed_up_to(pool, 1))
        assert await seal(pool) == 1  # the open transaction holds back everything committed after it began
        await transaction.commit()
    finally:
        await slow.close()
    await sealed_all(pool)
    order = [r["position"] for r in await pool.fetch("SELECT position FROM vjm.audit_leaves ORDER BY leaf_index")]
    assert order == [first.position, early.position, late.position]  # the open transaction's xid came first
    # Two sealers at once never duplicate or skip a leaf.
    await store.append(prepare_event("create", create_data(), user_id="u4", actor="u4"))
    await asyncio.gather(seal(pool), seal(pool))
    await sealed_all(pool)
    assert await pool.fetchval("SELECT count(*) = 4 AND max(leaf_index) = 3 FROM vjm.audit_leaves")


async def test_archived_events_still_verify_against_the_head_through_their_leaves(auditor, signed, pool) -> None:
    """Retention: events below an archive boundary may leave the log; the head still verifies."""
    rows = await leaves(pool)
    boundary = len(rows) // 2
    archived = [r["position"] for r in rows[:boundary]]
    # Without a recorded archive, removing those events is a deletion.
    await as_hostile_dba(pool, "DELETE FROM vjm.job_events WHERE position = ANY($1::bigint[])", archived)
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and report.leaf_index == 0 and "missing" in report.problem
    # Recorded as archived (what a retention step writes), the head verifies through the leaf hashes.
    await pool.execute("INSERT INTO vjm.audit_archives (archived_below, archive_digest) VALUES ($1, $2)",
                       boundary, hashlib.sha256(b"the archive file").digest())
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert report.ok and report.archived_leaves == boundary and report.leaves_checked == signed.tree_size
    assert any("archived" in n for n in report.notes)
    # Above the boundary every event must still be there, and the archived leaves cannot change.
    live = rows[boundary + 1]
    await as_hostile_dba(pool, "DELETE FROM vjm.job_events WHERE position = $1", live["position"])
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and report.position == live["position"]


async def test_archived_leaves_are_covered_by_the_signed_root(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    await pool.execute("INSERT INTO vjm.audit_archives (archived_below, archive_digest) VALUES ($1, $2)",
                       4, hashlib.sha256(b"the archive file").digest())
    assert (await auditor.audit.verify_tree_head(signed, public(KEY))).ok
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE vjm.audit_leaves DISABLE TRIGGER audit_leaves_append_only")
        await conn.execute("UPDATE vjm.audit_leaves SET leaf_hash = sha256(leaf_hash) WHERE leaf_index = 2")
        await conn.execute("ALTER TABLE vjm.audit_leaves ENABLE ALWAYS TRIGGER audit_leaves_append_only")
    report = await auditor.audit.verify_tree_head(signed, public(KEY))
    assert not report.ok and not report.root_matches and rows[2]["leaf_index"] == 2


async def test_signing_refuses_a_log_that_disagrees_with_its_sealed_leaves(auditor, signed, pool) -> None:
    rows = await leaves(pool)
    await as_hostile_dba(pool, "UPDATE vjm.job_events SET actor = 'x' WHERE position = $1", rows[0]["position"])
    with pytest.raises(Exception, match="will not sign: leaf 0"):
        await auditor.audit.sign_tree_head(KEY)


async def test_only_admins_read_the_tree(pool, signed) -> None:
    async with pool.acquire() as conn:
        for role in ("vjm_authenticated", "vjm_processor", "vjm_projector"):
            async with conn.transaction():
                await conn.execute(f"SET LOCAL ROLE {role}")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch("SELECT * FROM vjm.audit_leaves LIMIT 1")
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE vjm_admin")
            assert await conn.fetchval("SELECT count(*) FROM vjm.audit_leaves") == signed.tree_size
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DELETE FROM vjm.audit_leaves")
        with pytest.raises(asyncpg.PostgresError, match="append-only"):  # even for a superuser, while on
            await conn.execute("DELETE FROM vjm.audit_heads")
