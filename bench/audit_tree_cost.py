"""What the log-wide audit tree costs: sealing (leaves/s), verifying a head, a proof, storage per event.

Loads N create events (bulk creates) plus a job with a few transitions into a scratch
database (created and dropped), then times, with the vjm_admin role the CLI uses:

* `seal`: vjm.audit_seal over every event, in batches of 100,000 (one SQL statement each);
* `sign`: the whole tree recomputed from the events (every event hash from its content) and signed;
* `verify`: `verify_tree_head` for that head (the same recount, plus the comparison);
* `prove`: inclusion proofs of one job's events (one pass over the sealed leaf hashes);
* storage: vjm.audit_leaves with its indexes, per event, and vjm.job_events per event beside it.

`python -m bench.audit_tree_cost [URL] [--n 200000]`; URL: a superuser URL of the server
(default VJM_TEST_DATABASE_URL). The append path is not touched: the guard writes no leaf.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import name_the_principal
from store import EventStore, create_pool, migrate, prepare_event, with_database
from store.audit import tree_state
from videojobs import Settings, connect


async def main(url: str, n: int) -> dict:
    name = f"vjm_bench_audit_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.execute(name_the_principal(name))
    db = with_database(url, name)
    owner = None
    try:
        conn = await asyncpg.connect(db)
        await migrate(conn)
        await conn.close()
        owner = await create_pool(db, max_size=2)  # the bench's own pool beside the manager's (kept private)
        async with connect(settings=Settings(database_url=db), listeners=False) as manager:
            store = EventStore(owner)
            data = {"original_filename": "a.mp4", "original_filesize": 1000, "clip_count": 3,
                    "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"}
            for start in range(0, n, 20_000):
                await store.append_creates([prepare_event("create", data, user_id=f"u{i % 50}", actor="bench")
                                            for i in range(start, min(n, start + 20_000))])
            job = await store.append(prepare_event("create", data, user_id="u1", actor="bench"))
            started = await store.append(prepare_event("start", {"worker_id": "w"}, job_id=job.job_id))
            await store.append(prepare_event("complete", {"output_paths": ["/o"]}, job_id=job.job_id,
                                             attempt=started.attempt))
            events = await owner.fetchval("SELECT count(*) FROM vjm.job_events")

            t = time.perf_counter()
            size = await manager.audit.seal()
            seal_s = time.perf_counter() - t
            assert size == events, (size, events)

            t = time.perf_counter()
            head = await manager.audit.sign_tree_head(Ed25519PrivateKey.generate())
            sign_s = time.perf_counter() - t
            t = time.perf_counter()
            report = await manager.audit.verify_tree_head(head)
            verify_s = time.perf_counter() - t
            assert report.ok
            t = time.perf_counter()
            proof = await manager.audit.prove_job(job.job_id, head)
            prove_s = time.perf_counter() - t
            sizes = await owner.fetchrow(
                "SELECT pg_total_relation_size('vjm.audit_leaves') AS leaves, "
                "pg_total_relation_size('vjm.job_events') AS events")
            assert (await tree_state(owner))[0] == events
        return {"events": events, "seal_s": round(seal_s, 3), "seal_leaves_per_s": round(events / seal_s),
                "sign_s": round(sign_s, 3), "verify_s": round(verify_s, 3),
                "verify_leaves_per_s": round(events / verify_s), "prove_s": round(prove_s, 3),
                "proof_events": len(proof["events"]), "proof_path_len": len(proof["events"][0]["audit_path"]),
                "audit_leaves_bytes_per_event": round(sizes["leaves"] / events, 1),
                "job_events_bytes_per_event": round(sizes["events"] / events, 1)}
    finally:
        if owner is not None:
            await owner.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("VJM_TEST_DATABASE_URL"))
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.url, args.n)), indent=2))
