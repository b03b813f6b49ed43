"""The schema: a baseline (sql/schema/, the current schema by concern) and forward-only migrations.

A new database gets the baseline, which already contains every migration in
sql/migrations/: they are recorded as applied without running. A database built from
an earlier baseline gets the numbered migrations it lacks (sql/migrations/NNN_name.sql),
one transaction each. Applied migrations are recorded in vjm.schema_migrations with a
SHA-256 checksum; the runner refuses to start when an applied migration has changed or
is unknown, and refuses a database migrated with the numbering vjm used before the
baseline. Two processes migrating at once serialise on a session advisory lock, so the
second finds the work done. tests/integration/test_schema_catalog.py checks that the
baseline and "earlier baseline + migrations" build the same catalog.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from statemachine.errors import AccessDenied, MigrationError

from .sqlfiles import sql_dir

log = structlog.get_logger("vjm.migrations")

# Any fixed 64-bit key; chosen so it cannot collide with the projector's locks.
MIGRATION_LOCK_KEY = 0x766A6D5F6D696772  # "vjm_migr"
_FILENAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
BASELINE = 0  # the version vjm.schema_migrations records for the baseline
PRE_BASELINE = (
    "this database was migrated by a vjm from before the baseline schema (migrations {versions}); "
    "there is no upgrade path from that numbering: create a new database, or DROP SCHEMA vjm CASCADE "
    "(this deletes its jobs and history), then run `vjm migrate`")

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS vjm;
CREATE TABLE IF NOT EXISTS vjm.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    """The baseline (version 0, when `directory`/schema has files) and the numbered migrations, in order."""
    root = directory or sql_dir()
    schema = sorted((root / "schema").glob("*.sql"))
    baseline = [Migration(BASELINE, "baseline", "\n".join(p.read_text() for p in schema))] if schema else []
    return baseline + _numbered(root / "migrations")


def _numbered(directory: Path) -> list[Migration]:
    """The files NNN_name.sql of `directory` in order; refuses duplicate numbers."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:03d}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, directory: Path | None = None) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    migrations = discover_migrations(directory)
    try:
        return await _migrate(conn, migrations)
    except asyncpg.InsufficientPrivilegeError as exc:
        login = await conn.fetchval("SELECT session_user")
        raise AccessDenied(f"login {login} may not migrate the vjm schema ({exc}): run `vjm migrate` with the "
                           "owner's URL, and connect the application as a login the schema grants rights to") from exc


async def _migrate(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        # Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
        # schema exists, which a login that only runs vjm (Supabase's `postgres`) may lack.
        if not await conn.fetchval("SELECT to_regclass('vjm.schema_migrations') IS NOT NULL"):
            await conn.execute(_BOOTSTRAP)
        applied = {r["version"]: r for r in await conn.fetch(
            "SELECT version, name, checksum FROM vjm.schema_migrations")}
        _check_applied(migrations, applied)
        if migrations and migrations[0].version == BASELINE and BASELINE not in applied:
            return await _install(conn, migrations)
        done = []
        for migration in migrations:
            if migration.version not in applied:
                await _apply(conn, migration)
                done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


def _check_applied(migrations: list[Migration], applied: dict) -> None:
    known = {m.version: m for m in migrations}
    if BASELINE in known and applied and BASELINE not in applied:
        raise MigrationError(PRE_BASELINE.format(versions=", ".join(f"{v:03d}" for v in sorted(applied))))
    for version, row in sorted(applied.items()):
        if version == BASELINE:
            continue  # the baseline is the current schema: it changes with every migration
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"database has migration {version:03d}_{row['name']} which this vjm does not know; upgrade vjm")
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {version:03d}_{migration.name}.sql changed after it was applied "
                f"(checksum {row['checksum'][:12]} in the database, {migration.checksum[:12]} on disk); "
                "migrations are forward-only: add a new file instead")


async def _install(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    """A new database: the baseline, with every numbered migration (it contains them) recorded as applied."""
    async with conn.transaction():
        await conn.execute(migrations[0].sql)
        await conn.executemany(
            "INSERT INTO vjm.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            [(m.version, m.name, m.checksum) for m in migrations])
    log.info("schema_installed", migrations=len(migrations) - 1)
    return [m.version for m in migrations]


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    async with conn.transaction():
        await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO vjm.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version, migration.name, migration.checksum)
    log.info("migration_applied", version=migration.version, name=migration.name)


async def migration_status(conn: asyncpg.Connection) -> dict[str, list[int]]:
    """Which versions are applied and which are pending."""
    exists = await conn.fetchval("SELECT to_regclass('vjm.schema_migrations') IS NOT NULL")
    applied = set()
    if exists:
        applied = {r[0] for r in await conn.fetch("SELECT version FROM vjm.schema_migrations")}
    known = [m.version for m in discover_migrations()]
    return {"applied": sorted(applied), "pending": [v for v in known if v not in applied]}
