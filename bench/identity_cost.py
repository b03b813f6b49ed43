"""What end-user identity costs on the append path, measured inside the server.

A plpgsql procedure, run as `vjm_app` acting as `vjm_authenticated` with an identity,
appends `update_metadata` to the user's own job N times through `vjm.append_event`,
with a COMMIT after each (so every append is its own transaction, as a request is).
No client round trips are timed: only the server's work per append. The best of
several runs is reported, in microseconds per append.

`python -m bench.identity_cost [URL] [--n 2000] [--runs 5]` on a scratch database
(created and dropped). URL: a superuser URL of the server (default VJM_TEST_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import asyncpg

from bench.common import name_the_principal
from store import migrate, with_database
from store.postgres import with_user

PROCEDURE = """
CREATE OR REPLACE PROCEDURE pg_temp.bench_appends(p_job uuid, p_n int)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. p_n LOOP
        PERFORM vjm.append_event(p_job, 'update_metadata', jsonb_build_object('clip_count', 1 + i % 9),
                                 NULL, NULL, NULL, NULL, NULL);
        COMMIT;
    END LOOP;
END
$$;
"""


async def measure(url: str, n: int, runs: int, sql_dir: str | None = None) -> dict:
    """Per-append server time (µs), best of `runs`, on a scratch database."""
    name = "vjm_bench_identity_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.execute(name_the_principal(name))
    try:
        db_url = with_database(url, name)
        conn = await asyncpg.connect(db_url)
        try:
            await migrate(conn, Path(sql_dir) if sql_dir else None)
            has_tokens = await conn.fetchval("SELECT to_regprocedure('vjm.issue_token(text,integer)') IS NOT NULL")
            token = await conn.fetchval("SELECT vjm.issue_token('bench-user', 3600)") if has_tokens else None
        finally:
            await conn.close()
        app = await asyncpg.connect(with_user(db_url, "vjm_app"))
        try:
            await app.execute("SET synchronous_commit = off")  # time the server's work, not the disk
            await app.execute("SET ROLE vjm_authenticated")
            if token is not None:
                await app.execute("SELECT set_config('request.jwt', $1, false)", token)
            else:
                await app.execute("""SELECT set_config('request.jwt.claims', '{"sub":"bench-user","role":"authenticated"}', false)""")
            job = uuid.uuid4()
            await app.execute("SELECT vjm.append_event($1, 'create', $2, NULL, NULL, NULL, 'bench-user', NULL)", job,
                              json.dumps({"original_filename": "a.mp4", "original_filesize": 1024, "clip_count": 5,
                                          "quality_preset": "pro", "enhancement_level": "basic",
                                          "platform_target": "tiktok"}))
            await app.execute(PROCEDURE)
            await app.execute("CALL pg_temp.bench_appends($1, 200)", job)  # warm-up: plans, caches
            best = []
            for _ in range(runs):
                started = time.perf_counter()
                await app.execute("CALL pg_temp.bench_appends($1, $2)", job, n)
                best.append((time.perf_counter() - started) / n * 1e6)
        finally:
            await app.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
    return {"identity": "verified token (request.jwt)" if token else "claims (request.jwt.claims)",
            "appends_per_run": n, "runs": runs, "us_per_append_min": round(min(best), 1),
            "us_per_append_all": [round(b, 1) for b in best]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("VJM_TEST_DATABASE_URL"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sql-dir", help="the sql/ directory to migrate with (default: this checkout's)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.url, args.n, args.runs, args.sql_dir))))


if __name__ == "__main__":
    main()
