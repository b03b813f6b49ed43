"""`vjm audit keygen | seal | sign-head | verify --head | prove | check-proof | consistency` as an auditor runs them.

The real console script in a subprocess, real Postgres; the tampering is a superuser's, on purpose.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from store import EventStore, prepare_event
from store.audit import seal
from tests.support.cli import avjm
from tests.support.factories import create_data
from tests.support.waiting import eventually


async def make_jobs(store: EventStore, count: int) -> list:
    jobs = []
    for n in range(count):
        job = await store.append(prepare_event("create", create_data(), user_id="alice", actor="alice"))
        started = await store.append(prepare_event("start", {"worker_id": "w1"}, job_id=job.job_id))
        if n % 2:
            await store.append(prepare_event("complete", {"output_paths": ["/o.mp4"]}, job_id=job.job_id,
                                             attempt=started.attempt))
        jobs.append(job.job_id)
    return jobs


async def seal_everything(pool) -> int:
    total = await pool.fetchval("SELECT count(*) FROM vjm.job_events")

    async def done() -> bool:
        return await seal(pool) == total
    await eventually(done)
    return total


async def test_an_auditor_signs_verifies_proves_and_catches_a_deleted_job(store, pool, database_url,
                                                                          tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    made = await avjm("audit", "keygen", "--out", str(key))
    assert made.returncode == 0 and "key id:" in made.stdout
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and (tmp_path / "audit.pem.pub").exists()
    assert (await avjm("audit", "keygen", "--out", str(key))).returncode == 2  # never overwrites a key

    jobs = await make_jobs(store, 6)
    total = await seal_everything(pool)
    signed = await avjm("audit", "sign-head", "--key", str(key), "--database-url", database_url)
    assert signed.returncode == 0, signed.stderr
    head = json.loads(signed.stdout)
    assert head["tree_size"] == total and head["algorithm"] == "Ed25519" and len(head["signature"]) == 128
    head_file = tmp_path / "HEAD.json"
    head_file.write_text(signed.stdout)
    pub = str(tmp_path / "audit.pem.pub")

    ok = await avjm("audit", "verify", "--head", str(head_file), "--public-key", pub, "--database-url", database_url)
    assert ok.returncode == 0 and f"ok ({total} events present" in ok.stdout

    proved = await avjm("audit", "prove", str(jobs[1]), "--head", str(head_file), "--database-url", database_url)
    assert proved.returncode == 0, proved.stderr
    proof_file = tmp_path / "PROOF.json"
    proof_file.write_text(proved.stdout)
    assert [e["version"] for e in json.loads(proved.stdout)["events"]] == [1, 2, 3]
    # Offline: no --database-url, and no database reachable through the environment either.
    checked = await avjm("audit", "check-proof", str(proof_file), "--head", str(head_file), "--public-key", pub)
    assert checked.returncode == 0 and "proof verified: ok (3 events" in checked.stdout
    forged = json.loads(signed.stdout) | {"root_hash": "00" * 32}
    forged_file = tmp_path / "FORGED.json"
    forged_file.write_text(json.dumps(forged))
    refused = await avjm("audit", "check-proof", str(proof_file), "--head", str(forged_file))
    assert refused.returncode == 1 and "signature does not verify" in refused.stdout

    # The log grows; the new head extends the old one.
    await make_jobs(store, 1)
    await seal_everything(pool)
    newer = await avjm("audit", "sign-head", "--key", str(key), "--database-url", database_url)
    newer_file = tmp_path / "NEWER.json"
    newer_file.write_text(newer.stdout)
    consistent = await avjm("audit", "consistency", str(head_file), str(newer_file), "--public-key", pub,
                            "--database-url", database_url)
    assert consistent.returncode == 0 and f"extends the tree of {total}" in consistent.stdout

    # A hostile DBA removes a whole job: the chain check is blind, the head is not.
    first_leaf = await pool.fetchval("SELECT min(leaf_index) FROM vjm.audit_leaves WHERE job_id = $1", jobs[2])
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE vjm.job_events DISABLE TRIGGER job_events_append_only")
        await conn.execute("DELETE FROM vjm.job_events WHERE job_id = $1", jobs[2])
        await conn.execute("ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only")
    chain = await avjm("audit", "verify", "--database-url", database_url)
    assert chain.returncode == 0
    failed = await avjm("audit", "verify", "--head", str(head_file), "--public-key", pub,
                        "--database-url", database_url, "--json")
    report = json.loads(failed.stdout)
    assert failed.returncode == 1 and not report["ok"] and report["leaf_index"] == first_leaf
    assert report["job_id"] == str(jobs[2]) and "missing (deleted)" in report["problem"]
    text = await avjm("audit", "verify", "--head", str(head_file), "--database-url", database_url)
    assert text.returncode == 1 and f"tree head FAILED at leaf {first_leaf}" in text.stdout
    assert "the key was not pinned" in text.stderr
