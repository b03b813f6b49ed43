-- Teams, identity and rights: who is calling, which jobs they may see, which triggers
-- they may fire. The guard (write_api.sql) and the policies (row_level_security.sql) ask
-- these functions; nothing else decides.
SET LOCAL ROLE vjm_owner;

-- Ids the server issues (teams; jobs whose creator names none): time-ordered like
-- UUIDv7 (48 bits of milliseconds, version 7, random bits), so new rows land at the right
-- edge of every index. End users never choose an id: a chosen id that is taken would
-- answer "exists" where a free one succeeds.
CREATE FUNCTION vjm.new_id() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
               substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
               52, 1), 53, 1), 'hex')::uuid
$$;

-- Teams: a user sees the jobs of every team they belong to. Membership is read on
-- every statement (no cache), so adding or removing a member takes effect at once.
-- Written only through the functions below (vjm.create_team, vjm.add_team_member,
-- vjm.remove_team_member, vjm.delete_team): no run-time role may write these tables.
-- A deleted team keeps its row (deleted_at), so its id is never issued again and the
-- events and jobs that name it (vjm.jobs.team_id references it) never name another team.
CREATE TABLE vjm.teams (
    team_id    uuid PRIMARY KEY DEFAULT vjm.new_id(),
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    owner_id   text        NOT NULL CHECK (length(owner_id) BETWEEN 1 AND 128),
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
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

-- A user's teams, read afresh by every statement (membership changes apply to the next
-- statement). SECURITY DEFINER so that the team_members policy can use it without
-- recursing into itself; no run-time role may execute it (it would tell anyone's teams).
-- plpgsql, so its plan is cached per session.
CREATE FUNCTION vjm.team_ids_of(p_user_id text) RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN ARRAY(SELECT m.team_id FROM vjm.team_members m WHERE m.user_id = p_user_id);
END
$$;

-- The caller's own teams (no run-time role may ask vjm.team_ids_of about anyone else).
CREATE FUNCTION vjm.current_team_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN vjm.team_ids_of(vjm.current_user_id());
END
$$;

-- Stricter than seeing: a user creates jobs only for themselves, and only in a team they are in.
-- `caller` is the verified user id (vjm.current_user_id()) and `teams` their teams
-- (vjm.team_ids_of(caller)): the guard asks both once per call and hands them down, since
-- verifying a token is the dearest step of an end user's append, and so that every item,
-- a missing job's too, is judged after the same reads.
CREATE FUNCTION vjm.may_create(job_user_id text, job_team_id uuid, caller text, teams uuid[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE vjm.caller_kind()
        WHEN 'admin' THEN true
        WHEN 'user' THEN coalesce(job_user_id = caller, false)
                      AND (job_team_id IS NULL OR coalesce(job_team_id = ANY (teams), false))
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

-- A user sees a job that is theirs or their team's.
CREATE FUNCTION vjm.can_see_job_as_caller(job_user_id text, job_team_id uuid, caller text, teams uuid[])
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN CASE vjm.caller_kind()
        WHEN 'processor' THEN true
        WHEN 'admin' THEN true
        WHEN 'projector' THEN true
        WHEN 'user' THEN coalesce(job_user_id = caller, false) OR coalesce(job_team_id = ANY (teams), false)
        ELSE false END;
END
$$;

CREATE FUNCTION vjm.may_append_as_caller(type text, job_user_id text, job_team_id uuid, data jsonb, caller text,
                                         teams uuid[])
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN CASE vjm.caller_kind()
        WHEN 'processor' THEN true
        WHEN 'admin' THEN true
        WHEN 'user' THEN type <> 'create' OR vjm.may_create(job_user_id, job_team_id, caller, teams)
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

CREATE FUNCTION vjm.can_see_job(job_user_id text, job_team_id uuid, caller text, teams uuid[]) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('role') IN ('vjm_processor', 'vjm_admin', 'vjm_projector')
        OR current_setting('is_superuser') = 'on' OR vjm.can_see_job_as_caller(job_user_id, job_team_id, caller, teams)
$$;

CREATE FUNCTION vjm.may_append(type text, job_user_id text, job_team_id uuid, data jsonb, caller text, teams uuid[])
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('role') IN ('vjm_processor', 'vjm_admin')
        OR current_setting('is_superuser') = 'on'
        OR vjm.may_append_as_caller(type, job_user_id, job_team_id, data, caller, teams)
$$;

-- Team writes. No run-time role may write vjm.teams or vjm.team_members (so none may LOCK
-- them or lock their rows and hang other tenants' reads): these SECURITY DEFINER functions
-- are the only way in, and each checks its caller. A user acts for themselves: creates
-- teams they own, adds and removes members of teams they own, leaves a team, deletes a
-- team they own. An admin may do all of it for anyone. A team the caller may not see
-- (not its owner, not a member) and a team that does not exist, or was deleted, are the
-- same refusal: VJ404 'team <id> not found', after the same one lookup.
--
-- Lock order per team: member changes take the team's row FOR SHARE, deletion FOR UPDATE,
-- and a job created in a team FOR KEY SHARE (vjm.guard_append), so a deletion
-- either waits for them and then sees what they did, or they wait and find it deleted.

-- The live team `p_team_id`, locked in `p_mode` ('share' or 'update'), for a caller who
-- may `p_action` it: an admin, or the team's owner. VJ404 when the caller may not see it
-- (neither owner nor member) or it does not exist or was deleted; 42501 for a member who
-- is not the owner. Nothing is locked for a caller who is refused.
CREATE FUNCTION vjm.owned_team(p_team_id uuid, p_kind text, p_mode text, p_action text) RETURNS vjm.teams
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    me constant text := vjm.current_user_id();
    t vjm.teams;
BEGIN
    IF p_kind NOT IN ('user', 'admin') THEN
        RAISE EXCEPTION 'only end users and admins manage teams' USING ERRCODE = '42501';
    END IF;
    SELECT * INTO t FROM vjm.teams x
     WHERE x.team_id = p_team_id AND x.deleted_at IS NULL
       AND (p_kind = 'admin' OR x.owner_id = me
            OR EXISTS (SELECT 1 FROM vjm.team_members m WHERE m.team_id = x.team_id AND m.user_id = me));
    IF t.team_id IS NULL THEN
        RAISE EXCEPTION 'team % not found', p_team_id USING ERRCODE = 'VJ404';
    END IF;
    IF p_kind = 'user' AND t.owner_id IS DISTINCT FROM me THEN
        RAISE EXCEPTION 'only the owner of team % may %', p_team_id, p_action USING ERRCODE = '42501';
    END IF;
    IF p_mode = 'update' THEN
        SELECT * INTO t FROM vjm.teams x WHERE x.team_id = p_team_id AND x.deleted_at IS NULL FOR UPDATE;
    ELSE
        SELECT * INTO t FROM vjm.teams x WHERE x.team_id = p_team_id AND x.deleted_at IS NULL FOR SHARE;
    END IF;
    IF t.team_id IS NULL THEN  -- deleted meanwhile
        RAISE EXCEPTION 'team % not found', p_team_id USING ERRCODE = 'VJ404';
    END IF;
    RETURN t;
END
$$;

-- A new team, its id issued here, owned and joined by `p_owner_id` (a user: themselves,
-- the default).
CREATE FUNCTION vjm.create_team(p_name text, p_owner_id text DEFAULT NULL) RETURNS vjm.teams
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind constant text := vjm.caller_kind();
    me constant text := vjm.current_user_id();
    owner constant text := CASE WHEN kind = 'user' THEN coalesce(p_owner_id, me) ELSE p_owner_id END;
    t vjm.teams;
BEGIN
    IF kind NOT IN ('user', 'admin') THEN
        RAISE EXCEPTION 'only end users and admins create teams' USING ERRCODE = '42501';
    END IF;
    IF kind = 'user' AND owner IS DISTINCT FROM me THEN
        RAISE EXCEPTION 'a user creates teams for themselves only' USING ERRCODE = '42501';
    END IF;
    IF coalesce(length(owner), 0) NOT BETWEEN 1 AND 128 THEN
        RAISE EXCEPTION 'owner_id must be 1-128 characters' USING ERRCODE = '22023';
    END IF;
    IF coalesce(length(p_name), 0) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'name must be 1-200 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO vjm.teams (name, owner_id) VALUES (p_name, owner) RETURNING * INTO t;
    INSERT INTO vjm.team_members (team_id, user_id, role) VALUES (t.team_id, owner, 'owner');
    RETURN t;
END
$$;

-- Add a member to a live team, or change their role (its owner or an admin).
CREATE FUNCTION vjm.add_team_member(p_team_id uuid, p_user_id text, p_role text DEFAULT 'member')
RETURNS vjm.team_members
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind constant text := vjm.caller_kind();
    t vjm.teams := vjm.owned_team(p_team_id, kind, 'share', 'add members');
    m vjm.team_members;
BEGIN
    IF coalesce(length(p_user_id), 0) NOT BETWEEN 1 AND 128 THEN
        RAISE EXCEPTION 'user_id must be 1-128 characters' USING ERRCODE = '22023';
    END IF;
    IF p_role IS NULL OR p_role NOT IN ('owner', 'member') THEN
        RAISE EXCEPTION 'role must be owner or member' USING ERRCODE = '22023';
    END IF;
    INSERT INTO vjm.team_members AS x (team_id, user_id, role) VALUES (p_team_id, p_user_id, p_role)
    ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role
    RETURNING x.* INTO m;
    RETURN m;
END
$$;

-- Remove a member (the team's owner or an admin), or leave a team (the member). Returns
-- the removed membership, or NULL when there was none this caller may remove.
CREATE FUNCTION vjm.remove_team_member(p_team_id uuid, p_user_id text) RETURNS vjm.team_members
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind constant text := vjm.caller_kind();
    me constant text := vjm.current_user_id();
    m vjm.team_members;
BEGIN
    IF kind NOT IN ('user', 'admin') THEN
        RAISE EXCEPTION 'only end users and admins manage teams' USING ERRCODE = '42501';
    END IF;
    DELETE FROM vjm.team_members x
     WHERE x.team_id = p_team_id AND x.user_id = p_user_id
       AND (kind = 'admin' OR x.user_id = me
            OR EXISTS (SELECT 1 FROM vjm.teams t WHERE t.team_id = p_team_id AND t.owner_id = me))
    RETURNING x.* INTO m;
    RETURN m;
END
$$;

-- Delete a team (its owner or an admin). Refused (VJ409) while any job of the team is not
-- deleted: delete those jobs first. The team's row stays, marked deleted, so its id is
-- never issued again; its memberships go, and no one can join it again. Its deleted jobs'
-- events stay readable by their owners.
CREATE FUNCTION vjm.delete_team(p_team_id uuid) RETURNS vjm.teams
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind constant text := vjm.caller_kind();
    t vjm.teams := vjm.owned_team(p_team_id, kind, 'update', 'delete it');
    live uuid;
BEGIN
    -- The log decides, not the projection: the team's creates (indexed: job_events_team_creates)
    -- without a delete.
    SELECT c.job_id INTO live FROM vjm.job_events c
     WHERE c.team_id = p_team_id AND c.type = 'create'
       AND NOT EXISTS (SELECT 1 FROM vjm.job_events d WHERE d.job_id = c.job_id AND d.type = 'delete')
     LIMIT 1;
    IF live IS NOT NULL THEN
        RAISE EXCEPTION 'team % still has jobs that are not deleted (for example %)', p_team_id, live
            USING ERRCODE = 'VJ409', HINT = 'delete the team''s jobs first';
    END IF;
    DELETE FROM vjm.team_members m WHERE m.team_id = p_team_id;
    UPDATE vjm.teams x SET deleted_at = clock_timestamp() WHERE x.team_id = p_team_id RETURNING x.* INTO t;
    RETURN t;
END
$$;

-- A job is created in a live team only: the guard (vjm.guard_append) checks and locks every
-- team a create names (FOR KEY SHARE, against vjm.delete_team), for every caller.
-- vjm.delete_team reads the log through this index: a team's creates.
CREATE INDEX job_events_team_creates ON vjm.job_events (team_id) WHERE type = 'create' AND team_id IS NOT NULL;
