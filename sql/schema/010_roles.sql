-- Roles and the owner of the schema.
--
-- Roles are cluster-wide: several vjm databases in one cluster share them, and two
-- databases may run this file at the same moment. So roles are created only when
-- missing, and a CREATE or GRANT that loses a race to another database (duplicate_object,
-- unique_violation) counts as done. Nothing here ALTERs a role that is already right:
-- two concurrent ALTERs of one pg_authid row fail with "tuple concurrently updated".
--
--   vjm_owner          NOLOGIN; owns the schema and every object in it. The SECURITY DEFINER
--                      write functions (vjm.append_event, ...) run as it.
--   vjm_authenticated  end users: their own and their teams' jobs; user triggers only.
--   vjm_processor      video workers and the stuck detector: read every job, fire the
--                      processor triggers on any job.
--   vjm_projector      the projector: reads every event, writes the read models. Appends nothing.
--   vjm_admin          maintenance: reads everything, fires every trigger, manages teams.
--   vjm_app            the login that serves end users (the HTTP API's user pool). NOINHERIT,
--                      a member of vjm_authenticated only: each transaction picks it with
--                      SET ROLE and names its user with a signed token the database verifies
--                      (045_identity.sql). A code path that forgets to pick the role fails
--                      closed (permission denied). It cannot become a processor, projector or
--                      admin: a leaked vjm_app password is neither a worker's nor a maintenance
--                      credential, and without a token it is nobody.
--   vjm_worker         the login of processors, the stuck detector and the change-feed reader:
--                      NOINHERIT, a member of vjm_processor only.
--   vjm_listener       the projector's login: NOINHERIT, a member of vjm_projector only.
--   One login per purpose, because PostgreSQL lets any session signal (pg_terminate_backend,
--   pg_cancel_backend) the sessions of its own login: a leaked vjm_app password can then
--   reach vjm_app's sessions only, not the workers', the projector's or an operator's. In this
--   database those functions are not PUBLIC either (below), so even that needs pg_hba.conf to
--   keep the vjm logins out of the cluster's other databases. Grant vjm_admin to an operator's login.
-- Run-time roles are NOSUPERUSER NOBYPASSRLS and own nothing (tests/integration/security/test_security_catalog.py).
--
-- Privileges are in grants.sql, policies in row_level_security.sql.

DO $$
DECLARE
    wanted constant text[][] := ARRAY[
        ['vjm_owner',         'NOLOGIN NOINHERIT'],
        ['vjm_authenticated', 'NOLOGIN NOINHERIT'],
        ['vjm_processor',     'NOLOGIN NOINHERIT'],
        ['vjm_projector',     'NOLOGIN NOINHERIT'],
        ['vjm_admin',         'NOLOGIN NOINHERIT'],
        ['vjm_app',           'LOGIN NOINHERIT'],
        ['vjm_worker',        'LOGIN NOINHERIT'],
        ['vjm_listener',      'LOGIN NOINHERIT']];
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
                                                                 'vjm_projector', 'vjm_admin', 'vjm_app',
                                                                 'vjm_worker', 'vjm_listener'])
                                         AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'a vjm_* role is SUPERUSER or BYPASSRLS; fix it with ALTER ROLE ... NOSUPERUSER NOBYPASSRLS'
            USING ERRCODE = '42501';
    END IF;
END
$$;

DO $$
DECLARE
    wanted constant text[][] := ARRAY[['vjm_app', 'vjm_authenticated'], ['vjm_worker', 'vjm_processor'],
                                      ['vjm_listener', 'vjm_projector']];
    unwanted constant text[][] := ARRAY[['vjm_app', 'vjm_processor'], ['vjm_app', 'vjm_projector'],
                                        ['vjm_app', 'vjm_admin'], ['vjm_app', 'vjm_owner']];
    i int;
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        IF NOT pg_has_role(wanted[i][1], wanted[i][2], 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %I TO %I', wanted[i][2], wanted[i][1]);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
    -- Earlier versions made vjm_app a member of every run-time role: take that back (a
    -- cluster upgraded from them must give its workers and projector their own logins).
    FOR i IN 1 .. array_length(unwanted, 1) LOOP
        IF EXISTS (SELECT 1 FROM pg_auth_members m
                   WHERE m.member = unwanted[i][1]::regrole AND m.roleid = unwanted[i][2]::regrole) THEN
            BEGIN
                EXECUTE format('REVOKE %I FROM %I', unwanted[i][2], unwanted[i][1]);
            EXCEPTION WHEN undefined_object OR internal_error THEN
                NULL;  -- another database's migration revoked it first
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

-- The schema and the migrations ledger (created by the migrations runner) belong to the
-- owner; every later file runs as the owner, so what it creates is owned correctly from birth.
ALTER SCHEMA vjm OWNER TO vjm_owner;
ALTER TABLE vjm.schema_migrations OWNER TO vjm_owner;

-- Functions the owner creates are not callable by PUBLIC: grants.sql says who may call each.
-- (Global, not IN SCHEMA: per-schema default privileges can only add to the global ones.)
-- New tables get no grant by default either: a new table is reachable by nobody until
-- grants.sql says who may use it.
ALTER DEFAULT PRIVILEGES FOR ROLE vjm_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Signalling other sessions is not PUBLIC in this database: PostgreSQL lets any session
-- terminate or cancel the sessions of its own login, so a leaked vjm_app password could
-- otherwise cut every request of the API. Members of pg_signal_backend (and superusers)
-- keep the power. Only the functions' owner (a superuser) can change this; a migrator that
-- is not one (Supabase) leaves them as they are (SECURITY.md, known gaps).
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
            pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
            pg_catalog.pg_cancel_backend(integer) TO pg_signal_backend;
    END IF;
END
$$;

-- Time limits per login, so that a forgotten transaction or a runaway statement cannot hold
-- the projection's horizon (vjm.projection_horizon) or locks for long. Set on the logins,
-- because PostgreSQL applies a role's settings when it logs in, not on SET ROLE:
--   vjm_app       end users' requests (HTTP): short statements, short transactions;
--   vjm_worker    processors, the stuck detector, the change-feed reader: claims and appends;
--   vjm_listener  the projector: apply batches of up to 20,000 events. Its LISTEN sessions
--                 sit "idle", not "idle in transaction", so the idle limit never ends them.
-- An operator's login (a member of vjm_admin) is the deployment's to limit. Rebuild and
-- verify lift statement_timeout for their own transaction (SET LOCAL, store/projections/rebuild.py,
-- store/projections/verify.py). Only a missing setting is set, so a deployment's own
--   ALTER ROLE vjm_app SET statement_timeout = '30s';
-- survives later migrations (in this database or another one of the cluster). A session
-- may still SET its own limits: they protect against accidents, and /healthz and /metrics
-- name the pid of a transaction that holds the horizon back.
-- The service logins also act as their one run-time role from their first statement (`role`, a
-- property of the login, not state a client leaves in a session): behind a transaction pooler,
-- where a session role set by one client would not follow its next transaction, a worker's or
-- the projector's statement needs no BEGIN / SET LOCAL ROLE / COMMIT around it (store/pooler.py).
-- vjm_app has none: an end user's request sets role and token per transaction, and outside one
-- vjm_app is nobody.
DO $$
DECLARE
    wanted constant text[][] := ARRAY[
        ['vjm_app',      'statement_timeout',                   '15s'],
        ['vjm_app',      'idle_in_transaction_session_timeout', '15s'],
        ['vjm_worker',   'statement_timeout',                   '30s'],
        ['vjm_worker',   'idle_in_transaction_session_timeout', '30s'],
        ['vjm_listener', 'statement_timeout',                   '60s'],
        ['vjm_listener', 'idle_in_transaction_session_timeout', '60s'],
        ['vjm_worker',   'role',                                'vjm_processor'],
        ['vjm_listener', 'role',                                'vjm_projector']];
    i int;
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted[i][1]);
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) AS c(setting)
                               WHERE s.setrole = wanted[i][1]::regrole AND s.setdatabase = 0
                                 AND c.setting LIKE wanted[i][2] || '=%');
        BEGIN
            EXECUTE format('ALTER ROLE %I SET %I = %L', wanted[i][1], wanted[i][2], wanted[i][3]);
        EXCEPTION WHEN unique_violation OR internal_error THEN
            NULL;  -- "tuple concurrently updated": another database's migration set it
        WHEN insufficient_privilege THEN  -- a migrator without CREATEROLE: the operator sets them
            RAISE WARNING 'could not set % for %; run: ALTER ROLE % SET % = %', wanted[i][2], wanted[i][1],
                wanted[i][1], wanted[i][2], quote_literal(wanted[i][3]);
        END;
    END LOOP;
END
$$;
