"""Migrations: the baseline plus numbered files, idempotent, recorded with checksums, safe concurrently,
refusing the old numbering, shipped in the wheel."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from statemachine import MigrationError
from store import connect, discover_migrations, migrate, migration_status
from store.sqlfiles import sql_dir

ROOT = Path(__file__).resolve().parents[2]


async def test_migrate_is_idempotent(empty_database_url: str) -> None:
    conn = await connect(empty_database_url)
    try:
        first = await migrate(conn)
        assert first == [m.version for m in discover_migrations()]
        assert await migrate(conn) == []
        rows = await conn.fetch("SELECT version, checksum FROM vjm.schema_migrations ORDER BY version")
        assert [(r["version"], r["checksum"]) for r in rows] == [(m.version, m.checksum) for m in discover_migrations()]
        assert (await migration_status(conn))["pending"] == []
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_file_once(empty_database_url: str) -> None:
    conns = [await connect(empty_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = sorted(v for result in results for v in result)
        assert applied == [m.version for m in discover_migrations()]
        assert await conns[0].fetchval("SELECT count(*) FROM vjm.schema_migrations") == len(applied)
    finally:
        for c in conns:
            await c.close()


def _copy_sql(target: Path) -> Path:
    shutil.copytree(sql_dir(), target)
    return target


async def test_changed_applied_file_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    root = _copy_sql(tmp_path / "sql")
    (root / "migrations" / "001_extra.sql").write_text("CREATE TABLE vjm.extra (x int);")
    conn = await connect(empty_database_url)
    try:
        await migrate(conn, root)
        first = root / "migrations" / "001_extra.sql"
        first.write_text(first.read_text() + "\n-- sneaky edit\n")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, root)
    finally:
        await conn.close()


async def test_unknown_applied_migration_is_refused(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await conn.execute("INSERT INTO vjm.schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')")
        with pytest.raises(MigrationError, match="upgrade vjm"):
            await migrate(conn)
    finally:
        await conn.close()


def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path, empty_database_url: str) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "001_ok.sql").write_text("CREATE TABLE vjm.ok (x int);")
    (tmp_path / "migrations" / "002_broken.sql").write_text("CREATE TABLE vjm.half (x int); SELECT 1/0;")

    async def run() -> tuple[bool, bool, list]:
        conn = await connect(empty_database_url)
        try:
            with pytest.raises(Exception, match="division by zero"):
                await migrate(conn, tmp_path)
            half = await conn.fetchval("SELECT to_regclass('vjm.half') IS NOT NULL")
            ok = await conn.fetchval("SELECT to_regclass('vjm.ok') IS NOT NULL")
            versions = [r[0] for r in await conn.fetch("SELECT version FROM vjm.schema_migrations")]
            return ok, half, versions
        finally:
            await conn.close()

    ok, half, versions = asyncio.run(run())
    assert ok and not half and versions == [1]


async def test_a_database_migrated_with_the_old_numbering_is_refused(empty_database_url: str) -> None:
    conn = await connect(empty_database_url)
    try:
        await conn.execute("CREATE SCHEMA vjm; CREATE TABLE vjm.schema_migrations (version integer PRIMARY KEY, "
                           "name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        await conn.execute("INSERT INTO vjm.schema_migrations (version, name, checksum) "
                           "VALUES (1, 'event_store', 'x'), (17, 'doorbell', 'y')")
        with pytest.raises(MigrationError, match="before the baseline schema .*001, 017.*new database"):
            await migrate(conn)
        assert await conn.fetchval("SELECT to_regclass('vjm.job_events')") is None  # nothing was applied
    finally:
        await conn.close()


async def test_a_new_database_records_the_migrations_its_baseline_contains(empty_database_url: str,
                                                                           tmp_path: Path) -> None:
    root = _copy_sql(tmp_path / "sql")
    (root / "migrations" / "001_in_baseline.sql").write_text("SELECT 1/0;")  # would fail if it ran
    conn = await connect(empty_database_url)
    try:
        assert await migrate(conn, root) == [0, 1]
        assert await migrate(conn, root) == []
    finally:
        await conn.close()


