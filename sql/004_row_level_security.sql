-- Row Level Security: who sees and changes which rows, and who may fire which trigger.
--
-- Every table in vjm has ENABLE and FORCE ROW LEVEL SECURITY: with FORCE the owner is
-- subject to policies too, so vjm_owner (as whom the SECURITY DEFINER append functions
-- run) gets explicit policies below. Superusers and BYPASSRLS roles skip RLS; no vjm
-- run-time role is either (tests/integration/test_security_catalog.py).
--
-- Identity: vjm.current_user_id() (sql/001) reads request.jwt.claims, set per
-- transaction by store.identity.acting_as. Role: the caller's SET ROLE, see caller_role().
-- Created as the owner, so everything here is owned by vjm_owner from birth.
SET LOCAL ROLE vjm_owner;

-- The role the caller acts as. Inside a SECURITY DEFINER function current_user is the
-- owner, but the `role` setting is still what the caller chose with SET ROLE (or
-- set_config('role', ..., true)); 'none' when they logged in as a role and never switched.
-- It cannot be forged: setting it goes through SET ROLE's membership check.
CREATE FUNCTION vjm.caller_role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE current_setting('role') WHEN 'none' THEN session_user::text ELSE current_setting('role') END
$$;

-- The slow path of caller_kind(), for callers that are not a run-time role by name:
-- the owner, a login granted a vjm role with INHERIT (e.g. Supabase's `authenticated`),
-- judged by the privileges it holds, most powerful first. Not inlined, never on the hot path.
CREATE FUNCTION vjm.caller_kind_by_membership() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    r constant name := vjm.caller_role();
BEGIN
    RETURN CASE WHEN pg_has_role(r, 'vjm_admin', 'USAGE') OR pg_has_role(r, 'vjm_owner', 'USAGE') THEN 'admin'
                WHEN pg_has_role(r, 'vjm_processor', 'USAGE') THEN 'processor'
                WHEN pg_has_role(r, 'vjm_projector', 'USAGE') THEN 'projector'
                WHEN pg_has_role(r, 'vjm_authenticated', 'USAGE') THEN 'user'
                ELSE 'none' END;
END
$$;

-- What kind of caller this is: processor, user, projector, admin or none. Run-time roles
-- by name; a superuser by the is_superuser setting, which (like `role`) describes the
-- caller, not the SECURITY DEFINER owner, and which nobody can set; anything else by
-- the privileges it holds.
CREATE FUNCTION vjm.caller_kind() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE current_setting('role')
        WHEN 'vjm_processor' THEN 'processor'
        WHEN 'vjm_authenticated' THEN 'user'
        WHEN 'vjm_projector' THEN 'projector'
        WHEN 'vjm_admin' THEN 'admin'
        ELSE CASE WHEN current_setting('is_superuser') = 'on' THEN 'admin'
                  ELSE vjm.caller_kind_by_membership() END
    END
$$;

-- The teams the current user belongs to, read afresh by every statement (membership
-- changes apply to the next statement). SECURITY DEFINER so that the team_members
-- policy can use it without recursing into itself; it only ever returns the caller's
-- own memberships. plpgsql, so its plan is cached per session.
CREATE FUNCTION vjm.current_team_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN ARRAY(SELECT m.team_id FROM vjm.team_members m WHERE m.user_id = vjm.current_user_id());
END
$$;

-- Stricter than seeing: a user creates jobs only for themselves, and only in a team they are in.
CREATE FUNCTION vjm.may_create(job_user_id text, job_team_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE vjm.caller_kind()
        WHEN 'admin' THEN true
        WHEN 'user' THEN coalesce(job_user_id = vjm.current_user_id(), false)
                      AND (job_team_id IS NULL OR coalesce(job_team_id = ANY (vjm.current_team_ids()), false))
        ELSE false END
$$;

-- The shape of an end user's payload, for users who call vjm.append_event from a raw
-- SQL client instead of through statemachine.payloads (which validates every field):
-- a small object, only the keys the trigger knows, a file name and not a path, known
-- enum values. Trusted callers are not checked here (their payloads come from Python).
CREATE FUNCTION vjm.user_payload_ok(type text, data jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_typeof(data) = 'object' AND octet_length(data::text) <= 4096
        AND data - CASE type
            WHEN 'create' THEN ARRAY['original_filename', 'original_filesize', 'clip_count', 'quality_preset',
                                     'enhancement_level', 'platform_target', 'max_attempts']
            WHEN 'update_metadata' THEN ARRAY['original_filename', 'clip_count', 'quality_preset',
                                              'enhancement_level', 'platform_target']
            ELSE ARRAY['reason'] END = '{}'::jsonb
        AND (NOT data ? 'original_filename' OR (jsonb_typeof(data -> 'original_filename') = 'string'
             AND length(data ->> 'original_filename') BETWEEN 1 AND 255
             AND data ->> 'original_filename' !~ '[/\\[:cntrl:]]' AND data ->> 'original_filename' NOT IN ('.', '..')))
        AND (NOT data ? 'platform_target' OR data ->> 'platform_target' IN ('tiktok', 'instagram', 'youtube_shorts'))
        AND (NOT data ? 'quality_preset' OR data ->> 'quality_preset' IN ('draft', 'standard', 'pro', 'ultra'))
        AND (NOT data ? 'enhancement_level' OR data ->> 'enhancement_level' IN ('none', 'basic', 'advanced', 'maximum'))
        AND (NOT data ? 'reason' OR (jsonb_typeof(data -> 'reason') = 'string' AND length(data ->> 'reason') <= 500)),
        false)
$$;

-- The rules, for every kind of caller. Processors may fire exactly the processor triggers
-- (statemachine.PROCESSOR_TRIGGERS), not cancel: a worker that gives up fails the attempt,
-- and cancelling is the user's call. The stuck detector runs as vjm_processor (it reads
-- vjm.jobs and fires time_out). The projector appends nothing. Users see their own and
-- their teams' jobs; their events must have a sane payload, and their creates be their own.
CREATE FUNCTION vjm.may_fire_as_caller(trigger text) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN coalesce(CASE vjm.caller_kind()
        WHEN 'processor' THEN trigger IN ('start', 'progress', 'complete', 'fail', 'time_out')
        WHEN 'user' THEN trigger IN ('create', 'cancel', 'retry', 'update_metadata', 'delete')
        WHEN 'admin' THEN true
        ELSE false END, false);
END
$$;

CREATE FUNCTION vjm.can_see_job_as_caller(job_user_id text, job_team_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN CASE vjm.caller_kind()
        WHEN 'processor' THEN true
        WHEN 'admin' THEN true
        WHEN 'projector' THEN true
        WHEN 'user' THEN coalesce(job_user_id = vjm.current_user_id(), false)
                      OR coalesce(job_team_id = ANY (vjm.current_team_ids()), false)
        ELSE false END;
END
$$;

CREATE FUNCTION vjm.may_append_as_caller(type text, job_user_id text, job_team_id uuid, data jsonb)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN CASE vjm.caller_kind()
        WHEN 'processor' THEN true
        WHEN 'admin' THEN true
        WHEN 'user' THEN vjm.user_payload_ok(type, data)
                      AND (type <> 'create' OR vjm.may_create(job_user_id, job_team_id))
        ELSE false END;
END
$$;

-- The authorisation hooks of the append functions (sql/001), and the owner's INSERT check
-- on vjm.job_events (the last word on every append). Same signatures as in 001, still
-- LANGUAGE sql STABLE with no sub-select, so the planner inlines them into the guarded
-- INSERT, and deliberately tiny: the executor compiles an inlined expression again for
-- every append, branches it never takes included, and a call to a non-built-in function
-- costs a catalog lookup each time. So the trusted callers of the hot path (processor,
-- admin, a superuser) are decided by setting lookups alone, and everyone else goes
-- through one plpgsql call with the full rules above. (Spelling the rules out inline cost
-- trusted callers 30 us per append; this costs them about 6.)
CREATE OR REPLACE FUNCTION vjm.may_fire(trigger text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE current_setting('role')
        WHEN 'vjm_processor' THEN coalesce(trigger IN ('start', 'progress', 'complete', 'fail', 'time_out'), false)
        WHEN 'vjm_admin' THEN true
        ELSE current_setting('is_superuser') = 'on' OR vjm.may_fire_as_caller(trigger) END
$$;

CREATE OR REPLACE FUNCTION vjm.can_see_job(job_user_id text, job_team_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('role') IN ('vjm_processor', 'vjm_admin', 'vjm_projector')
        OR current_setting('is_superuser') = 'on' OR vjm.can_see_job_as_caller(job_user_id, job_team_id)
$$;

CREATE FUNCTION vjm.may_append(type text, job_user_id text, job_team_id uuid, data jsonb) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('role') IN ('vjm_processor', 'vjm_admin')
        OR current_setting('is_superuser') = 'on' OR vjm.may_append_as_caller(type, job_user_id, job_team_id, data)
$$;

REVOKE ALL ON FUNCTION vjm.current_team_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vjm.current_team_ids() TO vjm_authenticated, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.caller_role(), vjm.caller_kind(), vjm.caller_kind_by_membership(),
    vjm.may_create(text, uuid), vjm.user_payload_ok(text, jsonb), vjm.may_fire_as_caller(text),
    vjm.can_see_job_as_caller(text, uuid), vjm.may_append_as_caller(text, text, uuid, jsonb),
    vjm.may_append(text, text, uuid, jsonb)
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;

-- Every table: ENABLE + FORCE. A table without a policy for a role shows it nothing.
ALTER TABLE vjm.schema_migrations      ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.transitions            ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_events             ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.jobs                   ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_stats              ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_stats_daily        ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_changes            ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.projection_checkpoints ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.teams                  ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.team_members           ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- The user predicate, written out in each policy: "mine, or one of my teams'". The
-- identity functions are wrapped in sub-selects so that they run once per statement
-- (an InitPlan), not once per row.

-- schema_migrations: the migrator (a superuser) bypasses RLS; the owner and admins read it.
CREATE POLICY owner_all ON vjm.schema_migrations TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.schema_migrations FOR SELECT TO vjm_admin USING (true);

-- transitions: reference data, readable by every run-time role; the append guard joins it as the owner.
CREATE POLICY owner_all ON vjm.transitions TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.transitions FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);

-- job_events: append-only (a trigger refuses UPDATE/DELETE/TRUNCATE even for the owner),
-- written only by the append functions, which run as the owner: it reads every head and
-- inserts, and the insert is checked once more (vjm.may_append: a user's payload and creates).
CREATE POLICY owner_read ON vjm.job_events FOR SELECT TO vjm_owner USING (true);
CREATE POLICY owner_append ON vjm.job_events FOR INSERT TO vjm_owner
    WITH CHECK (vjm.may_append(type, user_id, team_id, data));
CREATE POLICY user_read ON vjm.job_events FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY service_read ON vjm.job_events FOR SELECT TO vjm_processor, vjm_projector, vjm_admin USING (true);

-- jobs: the projector writes; users read theirs; processors (stuck detector) and admins read all.
CREATE POLICY owner_all ON vjm.jobs TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.jobs TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.jobs FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY service_read ON vjm.jobs FOR SELECT TO vjm_processor, vjm_admin USING (true);

-- job_stats and job_stats_daily: a user row (scope 'user') carries user_id, a team row team_id.
CREATE POLICY owner_all ON vjm.job_stats TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.job_stats TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_stats FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_stats FOR SELECT TO vjm_admin USING (true);

CREATE POLICY owner_all ON vjm.job_stats_daily TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.job_stats_daily TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_stats_daily FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_stats_daily FOR SELECT TO vjm_admin USING (true);

-- job_changes: the dashboards' change feed, per job, with the job's owner and team.
CREATE POLICY owner_all ON vjm.job_changes TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.job_changes TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_changes FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_changes FOR SELECT TO vjm_admin USING (true);

-- projection_checkpoints: positions only, but they count every tenant's events: services only.
CREATE POLICY owner_all ON vjm.projection_checkpoints TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.projection_checkpoints TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.projection_checkpoints FOR SELECT TO vjm_processor, vjm_admin USING (true);

-- teams: members and the owner see a team; a user creates teams they own and manages them.
CREATE POLICY owner_all ON vjm.teams TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_all ON vjm.teams TO vjm_admin USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.teams FOR SELECT TO vjm_authenticated
    USING (owner_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY user_create ON vjm.teams FOR INSERT TO vjm_authenticated
    WITH CHECK (owner_id = (SELECT vjm.current_user_id()));
CREATE POLICY user_update ON vjm.teams FOR UPDATE TO vjm_authenticated
    USING (owner_id = (SELECT vjm.current_user_id())) WITH CHECK (owner_id = (SELECT vjm.current_user_id()));
CREATE POLICY user_delete ON vjm.teams FOR DELETE TO vjm_authenticated
    USING (owner_id = (SELECT vjm.current_user_id()));

-- team_members: a user sees their own memberships and their teams' members; a team's
-- owner adds and removes members; anyone may leave a team. The owner check reads
-- vjm.teams under the caller's own policies (teams they own are visible to them).
CREATE POLICY owner_all ON vjm.team_members TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_all ON vjm.team_members TO vjm_admin USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.team_members FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[])
           OR team_id IN (SELECT t.team_id FROM vjm.teams t WHERE t.owner_id = (SELECT vjm.current_user_id())));
CREATE POLICY team_owner_add ON vjm.team_members FOR INSERT TO vjm_authenticated
    WITH CHECK (team_id IN (SELECT t.team_id FROM vjm.teams t WHERE t.owner_id = (SELECT vjm.current_user_id())));
CREATE POLICY team_owner_update ON vjm.team_members FOR UPDATE TO vjm_authenticated
    USING (team_id IN (SELECT t.team_id FROM vjm.teams t WHERE t.owner_id = (SELECT vjm.current_user_id())))
    WITH CHECK (team_id IN (SELECT t.team_id FROM vjm.teams t WHERE t.owner_id = (SELECT vjm.current_user_id())));
CREATE POLICY remove_or_leave ON vjm.team_members FOR DELETE TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id())
           OR team_id IN (SELECT t.team_id FROM vjm.teams t WHERE t.owner_id = (SELECT vjm.current_user_id())));

RESET ROLE;
