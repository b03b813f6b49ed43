-- Teams, identity and rights: who is calling, which jobs they may see, which triggers
-- they may fire. The guard (write_api.sql) and the policies (row_level_security.sql) ask
-- these functions; nothing else decides.
SET LOCAL ROLE vjm_owner;

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

-- Identity: the `sub` of a signed token that the database verifies itself
-- (vjm.token_subject, sql/schema/045_identity.sql: HS256 with a key that only the owner
-- can read, expiry, audience, role 'authenticated'). The token is the setting
-- request.jwt (store.identity.acting_as sets it per transaction), else the bearer token
-- of PostgREST's request.headers. Claims that a session merely states
-- (request.jwt.claims, request.jwt.claim.sub) are not read: any session may set any
-- setting, so a leaked database password alone must not name a user. No token: NULL
-- (an end user then sees nothing); a token that fails verification: VJ401.
CREATE FUNCTION vjm.current_user_id() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    token text := current_setting('request.jwt', true);
BEGIN
    IF token IS NULL OR token = '' THEN
        token := substring(nullif(current_setting('request.headers', true), '')::json ->> 'authorization'
                           FROM '^[Bb]earer +(\S+)$');
        IF token IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN vjm.token_subject(token);
END
$$;

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

-- The rules, for every kind of caller. Processors may fire exactly the processor triggers
-- (vjm.trigger_rules), not cancel: a worker that gives up fails the attempt,
-- and cancelling is the user's call. The stuck detector runs as vjm_processor (it reads
-- vjm.jobs and fires time_out). The projector appends nothing. Users see their own and
-- their teams' jobs, and their creates must be their own. Payloads are not a matter of who
-- calls: the guard checks every caller's with vjm.payload_ok (payload_rules.sql).
CREATE FUNCTION vjm.may_fire_as_caller(trigger text) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN coalesce(CASE vjm.caller_kind()
        WHEN 'processor' THEN vjm.fired_by_processor(trigger)
        WHEN 'user' THEN vjm.fired_by_user(trigger)
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
        WHEN 'user' THEN type <> 'create' OR vjm.may_create(job_user_id, job_team_id)
        ELSE false END;
END
$$;

-- The authorisation hooks of the guard (write_api.sql), and the owner's INSERT check on
-- vjm.job_events (the last word on every append). LANGUAGE sql STABLE with no sub-select,
-- so the planner inlines them into the guard's statement, and deliberately tiny: the
-- trusted callers of the hot path (processor, admin, a superuser) are decided by setting
-- lookups alone, and everyone else goes through one plpgsql call with the full rules above.
CREATE FUNCTION vjm.may_fire(trigger text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE current_setting('role')
        WHEN 'vjm_processor' THEN vjm.fired_by_processor(trigger)
        WHEN 'vjm_admin' THEN true
        ELSE current_setting('is_superuser') = 'on' OR vjm.may_fire_as_caller(trigger) END
$$;

CREATE FUNCTION vjm.can_see_job(job_user_id text, job_team_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('role') IN ('vjm_processor', 'vjm_admin', 'vjm_projector')
        OR current_setting('is_superuser') = 'on' OR vjm.can_see_job_as_caller(job_user_id, job_team_id)
$$;

CREATE FUNCTION vjm.may_append(type text, job_user_id text, job_team_id uuid, data jsonb) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('role') IN ('vjm_processor', 'vjm_admin')
        OR current_setting('is_superuser') = 'on' OR vjm.may_append_as_caller(type, job_user_id, job_team_id, data)
$$;
