"""The baseline and "an earlier baseline + the migrations since" build the same schema.

sql/schema/ is the current schema; sql/migrations/ holds the forward-only steps that bring
a database built from an earlier baseline to it. A new database gets the baseline; an old
one gets the migrations. These tests build one database each way and compare their
catalogs: tables and views, columns, constraints, indexes, triggers, functions with their
full definitions, policies, grants, and the rule tables' rows. Any difference fails.

The earlier baseline is sql/schema/ as of the commit named in sql/migrations/FROM: the
baseline that databases in the field were built from. So an edit of the baseline that
comes without the migration bringing those databases along fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest

from store import connect, migrate, with_database
from store.sqlfiles import sql_dir

CATALOG = {
    "relations": """
        SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions::text,
               c.relacl::text, pg_get_userbyid(c.relowner)
          FROM pg_class c WHERE c.relnamespace = 'vjm'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'S')""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attacl::text
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relnamespace = 'vjm'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'vjm'::regnamespace""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'vjm'",
    "triggers": """
        SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE c.relnamespace = 'vjm'::regnamespace AND NOT t.tgisinternal""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text, pg_get_userbyid(p.proowner)
          FROM pg_proc p WHERE p.pronamespace::regnamespace::text IN ('vjm', 'vjm_entry')""",
    "policies": """
        SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check
          FROM pg_policies WHERE schemaname = 'vjm'""",
    "types": """
        SELECT t.typname, t.typtype FROM pg_type t
         WHERE t.typnamespace = 'vjm'::regnamespace AND t.typtype NOT IN ('b', 'c')""",
    "default_privileges": "SELECT pg_get_userbyid(defaclrole), defaclobjtype, defaclacl::text FROM pg_default_acl",
    "schema": "SELECT nspname, nspacl::text, pg_get_userbyid(nspowner) FROM pg_namespace "
              "WHERE nspname IN ('vjm', 'vjm_entry')",
    "rules": """
        SELECT 'transitions', to_jsonb(t)::text FROM vjm.transitions t
        UNION ALL SELECT 'trigger_rules', to_jsonb(r)::text FROM vjm.trigger_rules r
        UNION ALL SELECT 'job_defaults', to_jsonb(d)::text FROM vjm.job_defaults d""",
    "migrations": "SELECT version, name FROM vjm.schema_migrations WHERE version > 0",
}


async def catalog(url: str) -> dict[str, set[tuple]]:
    """Everything the schema defines, as sets of rows per kind."""
    conn = await asyncpg.connect(url)
    try:
        return {kind: {tuple(row) for row in await conn.fetch(query)} for kind, query in CATALOG.items()}
    finally:
        await conn.close()


def differences(a: dict[str, set[tuple]], b: dict[str, set[tuple]]) -> list[str]:
    """What one catalog has that the other does not, kind by kind."""
    found = []
    for kind in CATALOG:
        found += [f"{kind}: only in the baseline: {row}" for row in sorted(a[kind] - b[kind], key=str)]
        found += [f"{kind}: only after the migrations: {row}" for row in sorted(b[kind] - a[kind], key=str)]
    return found


def earlier_baseline(target: Path) -> Path:
    """sql/ as the migrations start from it: sql/schema/ at the commit sql/migrations/FROM names, no migrations."""
    root = sql_dir()
    (target / "migrations").mkdir(parents=True)
    (target / "schema").mkdir()
    commit = (root / "migrations" / "FROM").read_text().split()[0]
    listing = subprocess.run(["git", "ls-tree", "--name-only", commit, "sql/schema/"], cwd=root.parent,
                             check=True, capture_output=True, text=True).stdout.split()
    for name in listing:
        text = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=root.parent, check=True,
                              capture_output=True, text=True).stdout
        (target / "schema" / Path(name).name).write_text(text)
    return target


@pytest.fixture
async def two_databases(pg_server):
    names = [f"vjm_catalog_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    admin = await asyncpg.connect(pg_server.url)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        yield [with_database(pg_server.url, name) for name in names]
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _migrate(url: str, *roots: Path | None) -> None:
    conn = await connect(url)
    try:
        for root in roots:
            await migrate(conn, root)
    finally:
        await conn.close()


async def test_the_baseline_equals_an_earlier_baseline_plus_the_migrations(two_databases, tmp_path: Path) -> None:
    fresh, upgraded = two_databases
    await _migrate(fresh, None)
    await _migrate(upgraded, earlier_baseline(tmp_path / "earlier"), None)
    assert differences(await catalog(fresh), await catalog(upgraded)) == []


async def test_the_comparison_sees_a_migration_the_baseline_does_not_have(two_databases, tmp_path: Path) -> None:
    fresh, upgraded = two_databases
    root = tmp_path / "sql"
    shutil.copytree(sql_dir(), root)
    (root / "migrations" / "001_drift.sql").write_text(
        "SET LOCAL ROLE vjm_owner;\n"
        "CREATE OR REPLACE FUNCTION vjm.default_max_attempts() RETURNS smallint\n"
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT 5::smallint $f$;\n"
        "CREATE INDEX run_queue_platform ON vjm.run_queue (platform_target);\n")
    await _migrate(fresh, None)
    await _migrate(upgraded, earlier_baseline(tmp_path / "earlier"), root)
    found = differences(await catalog(fresh), await catalog(upgraded))
    assert any(d.startswith("functions: only after the migrations: ('vjm.default_max_attempts()'") for d in found)
    assert any(d.startswith("indexes: only after the migrations: ('run_queue_platform'") for d in found)
    assert any(d.startswith("migrations: only after the migrations: (1, 'drift')") for d in found)


