-- Roles, teams and privileges (policies are in 004_row_level_security.sql).
--
-- Roles are cluster-wide: several vjm databases in one cluster share them, and two
-- databases may run this file at the same moment. So roles are created only when
-- missing, and a CREATE or GRANT that loses a race to another database (duplicate_object,
-- unique_violation) counts as done. Nothing here ALTERs a role that is already right:
-- two concurrent ALTERs of one pg_authid row fail with "tuple concurrently updated".
--
--   vjm_owner          NOLOGIN; owns the schema and every object in it. SECURITY DEFINER
--                      functions (vjm.append_event, ...) run as it.
--   vjm_authenticated  end users: their own and their teams' jobs; user triggers only.
--   vjm_processor      video workers and the stuck detector: read every job, fire
--                      start/progress/complete/fail/time_out on any job.
--   vjm_projector      the projector: reads every event, writes the read models. Appends nothing.
--   vjm_admin          maintenance: reads everything, fires every trigger, manages teams.
--   vjm_app            the application's login. NOINHERIT: on its own it holds no privilege
--                      at all; each transaction (or a service pool's session) picks a run-time
--                      role with SET ROLE. A code path that forgets to pick one fails closed
--                      (permission denied) instead of running with the union of all roles.
--                      Not a member of vjm_admin: a leaked application credential must not
--                      be a maintenance credential; grant vjm_admin to an operator's login.
-- Run-time roles are NOSUPERUSER NOBYPASSRLS and own nothing (tests/integration/test_security_catalog.py).

DO $$
DECLARE
    wanted constant text[][] := ARRAY[
        ['vjm_owner',         'NOLOGIN NOINHERIT'],
        ['vjm_authenticated', 'NOLOGIN NOINHERIT'],
        ['vjm_processor',     'NOLOGIN NOINHERIT'],
        ['vjm_projector',     'NOLOGIN NOINHERIT'],
        ['vjm_admin',         'NOLOGIN NOINHERIT'],
        ['vjm_app',           'LOGIN NOINHERIT']];
    i int;
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted[i][1]) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
                               wanted[i][1], wanted[i][2]);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it first
            END;
        END IF;
    END LOOP;
    -- A role that exists with dangerous attributes (created by hand) is a configuration
    -- error, not something to fix silently under a concurrent migration.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ANY (ARRAY['vjm_owner', 'vjm_authenticated', 'vjm_processor',
                                                                 'vjm_projector', 'vjm_admin', 'vjm_app'])
                                         AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'a vjm_* role is SUPERUSER or BYPASSRLS; fix it with ALTER ROLE ... NOSUPERUSER NOBYPASSRLS'
            USING ERRCODE = '42501';
    END IF;
END
$$;

DO $$
DECLARE
    member_of text;
BEGIN
    FOREACH member_of IN ARRAY ARRAY['vjm_authenticated', 'vjm_processor', 'vjm_projector'] LOOP
        IF NOT pg_has_role('vjm_app', member_of, 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %I TO vjm_app', member_of);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
    -- The owner may restore or replicate its tables with session_replication_role = replica
    -- (pg_restore --disable-triggers does); the append-only trigger is ENABLE ALWAYS, so it
    -- still fires. A shared catalog row: another database may be granting it right now.
    IF NOT has_parameter_privilege('vjm_owner', 'session_replication_role', 'SET') THEN
        BEGIN
            GRANT SET ON PARAMETER session_replication_role TO vjm_owner;
        EXCEPTION WHEN duplicate_object OR unique_violation OR internal_error THEN
            NULL;  -- "tuple concurrently updated": the other migration granted it
        END;
    END IF;
    -- A migrator that is not a superuser (e.g. Supabase's `postgres`) must be a member of the
    -- owner role to hand objects to it and to SET ROLE vjm_owner in later migrations.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'vjm_owner', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT vjm_owner TO %I', current_user);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

-- Teams: a user sees the jobs of every team they belong to. Membership is read on
-- every statement (no cache), so adding or removing a member takes effect at once.
CREATE TABLE vjm.teams (
    team_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    owner_id   text        NOT NULL CHECK (length(owner_id) BETWEEN 1 AND 128),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vjm.team_members (
    team_id  uuid        NOT NULL REFERENCES vjm.teams (team_id) ON DELETE CASCADE,
    user_id  text        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    role     text        NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);

-- The lookup behind every user-scoped policy: "which teams is this user in".
CREATE INDEX team_members_user ON vjm.team_members (user_id, team_id);

-- Ownership: the schema and everything in it go to vjm_owner. This walks the catalog
-- on purpose (every object 001/002 created, whatever their current list is); grants
-- below are explicit, table by table, so that a new table is reachable by nobody until
-- a migration says who may use it. Later migrations should start with
-- `SET LOCAL ROLE vjm_owner` so that what they create is owned correctly from birth.
DO $$
DECLARE
    obj record;
BEGIN
    EXECUTE 'ALTER SCHEMA vjm OWNER TO vjm_owner';
    FOR obj IN
        SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
         WHERE c.relnamespace = 'vjm'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d  -- identity/serial sequences follow their table
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO vjm_owner',
                       CASE obj.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                        WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                                        ELSE 'TABLE' END, obj.name);
    END LOOP;
    FOR obj IN SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p
                WHERE p.pronamespace = 'vjm'::regnamespace LOOP
        EXECUTE format('ALTER %s %s OWNER TO vjm_owner',
                       CASE obj.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                       obj.name);
    END LOOP;
    FOR obj IN SELECT t.oid::regtype AS name FROM pg_type t
                WHERE t.typnamespace = 'vjm'::regnamespace AND t.typtype IN ('d', 'e', 'r') LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO vjm_owner', obj.name);
    END LOOP;
END
$$;

-- Functions created later by the owner are not callable by PUBLIC unless granted.
ALTER DEFAULT PRIVILEGES FOR ROLE vjm_owner IN SCHEMA vjm REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
-- New tables get no grant by default, on purpose: see the ownership note above.

-- Privileges. Row Level Security (004) then narrows every SELECT/INSERT/UPDATE/DELETE
-- to the rows each role may touch; without a grant here a role cannot even try.
GRANT USAGE ON SCHEMA vjm TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;

-- The event log: readable through RLS; written only by vjm.append_event/append_creates.
GRANT SELECT ON vjm.job_events TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;
GRANT SELECT ON vjm.transitions TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.append_event(uuid, text, jsonb, text, integer, integer, text, uuid)
    TO vjm_authenticated, vjm_processor, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.append_creates(uuid[], jsonb[], text[], text[], uuid[])
    TO vjm_authenticated, vjm_admin;

-- Read models (sql/002): the projector writes them, users read their rows, processors
-- read jobs (the stuck detector scans vjm.jobs), admins read everything.
GRANT SELECT, INSERT, UPDATE, DELETE ON vjm.jobs, vjm.job_stats, vjm.job_stats_daily, vjm.job_changes,
    vjm.projection_checkpoints TO vjm_projector;
GRANT SELECT ON vjm.jobs, vjm.job_stats, vjm.job_stats_daily, vjm.job_changes TO vjm_authenticated;
GRANT SELECT ON vjm.jobs, vjm.projection_checkpoints TO vjm_processor;
GRANT SELECT ON vjm.jobs, vjm.job_stats, vjm.job_stats_daily, vjm.job_changes, vjm.projection_checkpoints,
    vjm.schema_migrations TO vjm_admin;

-- Teams: users read the teams they are in and manage the teams they own (RLS decides);
-- admins manage all of them.
GRANT SELECT, INSERT, UPDATE, DELETE ON vjm.teams, vjm.team_members TO vjm_authenticated, vjm_admin;
