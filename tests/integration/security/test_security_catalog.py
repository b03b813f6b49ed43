"""Catalog audit: read from pg_catalog, so it keeps checking every table, view and
function that later migrations add, without a list to keep up to date."""

from __future__ import annotations

import asyncpg
import pytest

from statemachine import PROCESSOR_TRIGGERS, USER_TRIGGERS, Trigger
from store.identity import APP_LOGIN, RUNTIME_ROLES

TABLES_WITHOUT_FORCED_RLS = """
SELECT c.oid::regclass::text FROM pg_class c
 WHERE c.relnamespace = 'vjm'::regnamespace AND c.relkind IN ('r', 'p', 'f')
   AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
"""
# Materialized views cannot have RLS or security_invoker: they are refused outright.
VIEWS_WITHOUT_SECURITY_INVOKER = """
SELECT c.oid::regclass::text FROM pg_class c
 WHERE c.relnamespace = 'vjm'::regnamespace AND c.relkind IN ('v', 'm')
   AND (c.relkind = 'm' OR NOT coalesce('security_invoker=true' = ANY (c.reloptions)
                                        OR 'security_invoker=on' = ANY (c.reloptions), false))
"""
DEFINER_FUNCTIONS_UNPINNED_OR_PUBLIC = """
SELECT p.oid::regprocedure::text FROM pg_proc p
 WHERE p.pronamespace = 'vjm'::regnamespace AND p.prosecdef
   AND (NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) s
                     WHERE s LIKE 'search_path=%' AND s NOT LIKE '%public%' AND s NOT LIKE '%$user%')
        OR EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                    WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
"""
DANGEROUS_ROLES = """
SELECT rolname FROM pg_roles
 WHERE rolname = ANY ($1::text[]) AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)
"""
OBJECTS_OWNED_BY = """
SELECT kind || ' ' || name FROM (
    SELECT 'relation' AS kind, c.oid::regclass::text AS name, c.relowner AS owner FROM pg_class c
    UNION ALL SELECT 'function', p.oid::regprocedure::text, p.proowner FROM pg_proc p
    UNION ALL SELECT 'schema', n.nspname::text, n.nspowner FROM pg_namespace n
    UNION ALL SELECT 'type', t.oid::regtype::text, t.typowner FROM pg_type t
    UNION ALL SELECT 'database', d.datname::text, d.datdba FROM pg_database d
) o WHERE pg_get_userbyid(o.owner) = ANY ($1::text[])
"""
NOT_OWNED_BY_OWNER = """
SELECT kind || ' ' || name FROM (
    SELECT 'relation' AS kind, c.oid::regclass::text AS name, c.relowner AS owner FROM pg_class c
     WHERE c.relnamespace::regnamespace::text IN ('vjm', 'vjm_entry')
    UNION ALL SELECT 'function', p.oid::regprocedure::text, p.proowner FROM pg_proc p
     WHERE p.pronamespace::regnamespace::text IN ('vjm', 'vjm_entry')
    UNION ALL SELECT 'schema', n.nspname::text, n.nspowner FROM pg_namespace n WHERE n.nspname IN ('vjm', 'vjm_entry')
) o WHERE pg_get_userbyid(o.owner) <> 'vjm_owner'
"""
# What the end users' login may use by itself, in every schema but the system's: only vjm_entry,
# and in it only SECURITY INVOKER functions (they run with the login's own rights: nothing more).
APP_LOGIN_REACH = """
SELECT 'schema ' || n.nspname FROM pg_namespace n
 WHERE has_schema_privilege('vjm_app', n.oid, 'USAGE') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
   AND n.nspname NOT LIKE 'pg\\_%'
UNION ALL SELECT 'function ' || p.oid::regprocedure::text || CASE WHEN p.prosecdef THEN ' (definer)' ELSE '' END
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('vjm', 'vjm_entry') AND has_function_privilege('vjm_app', p.oid, 'EXECUTE')
UNION ALL SELECT 'relation ' || c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('vjm', 'vjm_entry') AND has_table_privilege('vjm_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE')
"""
EVENT_WRITERS = """
SELECT r.rolname || ' ' || priv FROM pg_roles r, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) priv
 WHERE r.rolname = ANY ($1::text[]) AND has_table_privilege(r.oid, 'vjm.job_events', priv)
"""

ALL_RUNTIME = sorted(RUNTIME_ROLES | {APP_LOGIN})


async def test_every_table_has_enabled_and_forced_rls(pool) -> None:
    assert await pool.fetch(TABLES_WITHOUT_FORCED_RLS) == []


async def test_every_view_is_security_invoker(pool) -> None:
    assert await pool.fetch(VIEWS_WITHOUT_SECURITY_INVOKER) == []


async def test_every_security_definer_function_pins_search_path_and_is_not_public(pool) -> None:
    assert await pool.fetch(DEFINER_FUNCTIONS_UNPINNED_OR_PUBLIC) == []


async def test_runtime_roles_cannot_bypass_rls_and_own_nothing(pool) -> None:
    assert await pool.fetch(DANGEROUS_ROLES, ALL_RUNTIME) == []
    assert await pool.fetch(OBJECTS_OWNED_BY, ALL_RUNTIME) == []
    assert await pool.fetch("SELECT 1 FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid "
                            "WHERE s.deptype = 'o' AND r.rolname = ANY ($1::text[])", ALL_RUNTIME) == []


async def test_everything_in_vjm_is_owned_by_the_owner_role(pool) -> None:
    # A SECURITY DEFINER function owned by the migrating superuser would run as superuser.
    assert await pool.fetch(NOT_OWNED_BY_OWNER) == []


async def test_no_runtime_role_may_write_events_directly(pool) -> None:
    assert await pool.fetch(EVENT_WRITERS, ALL_RUNTIME) == []


async def test_the_login_role_holds_nothing_by_itself(pool) -> None:
    row = await pool.fetchrow("SELECT rolinherit, rolcanlogin, pg_has_role('vjm_app', 'vjm_admin', 'MEMBER') AS admin,"
                              " pg_has_role('vjm_app', 'vjm_owner', 'MEMBER') AS owner FROM pg_roles"
                              " WHERE rolname = 'vjm_app'")
    assert tuple(row) == (False, True, False, False)
    assert not await pool.fetchval("SELECT has_schema_privilege('vjm_app', 'vjm', 'USAGE')")
    assert sorted(r[0] for r in await pool.fetch(APP_LOGIN_REACH)) == [
        "function vjm_entry.append_create_batch(text,uuid[],jsonb,text[],text[],uuid[])",
        "function vjm_entry.append_event(text,integer,uuid,text,jsonb,text,integer,integer,text,uuid)",
        "schema vjm_entry"]


@pytest.mark.parametrize("role,allowed", [
    ("vjm_authenticated", USER_TRIGGERS), ("vjm_processor", PROCESSOR_TRIGGERS),
    ("vjm_projector", frozenset()), ("vjm_admin", frozenset(Trigger)),
])
async def test_database_trigger_rights_match_the_state_machine(pool, role: str, allowed) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {role}")
        fired = {t for t in Trigger if await conn.fetchval("SELECT vjm.may_fire($1)", t.value)}
    assert fired == set(allowed)


async def test_authorisation_hooks_are_inlined(pool) -> None:
    plan = "\n".join(r[0] for r in await pool.fetch(
        "EXPLAIN (VERBOSE) SELECT vjm.may_fire(t), vjm.can_see_job('u', NULL, 'u', '{}'),"
        " vjm.may_append(t, 'u', NULL, '{}', 'u', '{}')"
        " FROM (VALUES ('start')) v(t)"))
    for hook in ("may_fire", "can_see_job", "may_append", "caller_kind", "caller_role"):
        assert f"vjm.{hook}(" not in plan, plan
    assert "current_setting('role'" in plan


async def test_the_audit_catches_what_a_careless_migration_adds(pool) -> None:
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("CREATE TABLE vjm.careless (x int)")
            await conn.execute("CREATE VIEW vjm.careless_view AS SELECT x FROM vjm.careless")
            await conn.execute("CREATE FUNCTION vjm.careless_fn() RETURNS int LANGUAGE sql SECURITY DEFINER"
                               " AS 'SELECT 1'")
            assert [r[0] for r in await conn.fetch(TABLES_WITHOUT_FORCED_RLS)] == ["vjm.careless"]
            assert [r[0] for r in await conn.fetch(VIEWS_WITHOUT_SECURITY_INVOKER)] == ["vjm.careless_view"]
            assert [r[0] for r in await conn.fetch(DEFINER_FUNCTIONS_UNPINNED_OR_PUBLIC)] == ["vjm.careless_fn()"]
            assert len(await conn.fetch(NOT_OWNED_BY_OWNER)) == 3
        finally:
            await tx.rollback()


async def test_migrations_run_concurrently_in_several_databases(pg_server) -> None:
    import uuid

    from store import connect, migrate, with_database
    names = [f"vjm_sec_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    admin = await asyncpg.connect(pg_server.url)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        conns = [await connect(with_database(pg_server.url, n)) for n in names]
        try:
            import asyncio
            results = await asyncio.gather(*(migrate(c) for c in conns))
            assert all(r == results[0] for r in results)
        finally:
            for c in conns:
                await c.close()
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
