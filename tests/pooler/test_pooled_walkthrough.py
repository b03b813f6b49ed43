"""The README's HTTP walkthrough (tests/acceptance/test_readme.py) with `vjm` behind PgBouncer:
VJM_DATABASE_URL the pooler, VJM_DATABASE_POOLER=transaction, VJM_DIRECT_DATABASE_URL the server."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.test_readme import run, walkthrough_script


def test_the_http_walkthrough_runs_as_written_through_the_pooler(pooled_url: str, pooled_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    run(["bash", str(walkthrough_script(tmp_path))], pooled_url, extra_env=pooled_env)


def test_vjm_migrate_behind_the_pooler_never_connects_to_it(empty_database_url: str, tmp_path: Path) -> None:
    # Migrations hold a session advisory lock, which a transaction pooler would hand to whoever gets
    # that server connection next: `vjm migrate` uses the direct URL only. The pooler's URL here
    # answers nothing at all, so a migration that touched it would fail.
    import asyncio
    import sys

    import asyncpg

    from bench.pgbouncer import free_port

    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    env = {"VJM_DIRECT_DATABASE_URL": empty_database_url, "VJM_DATABASE_POOLER": "transaction"}
    run([str(Path(sys.executable).parent / "vjm"), "migrate"], nowhere, extra_env=env)

    async def applied() -> int:
        conn = await asyncpg.connect(empty_database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM vjm.schema_migrations"))
        finally:
            await conn.close()

    assert asyncio.run(applied()) >= 1
