-- vjm event store: the transition table, the append-only event log and its guard.
-- Forward-only. Applied in one transaction by store.migrations.


-- The transition table. Must equal statemachine.RULES (a test compares them).
CREATE TABLE vjm.transitions (
    trigger    text NOT NULL,
    from_state text NOT NULL,
    to_state   text NOT NULL,
    guard      text CHECK (guard IN ('has_attempts_left', 'attempts_exhausted')),
    PRIMARY KEY (trigger, from_state, to_state)
);

INSERT INTO vjm.transitions (trigger, from_state, to_state, guard) VALUES
    ('create',          'absent',     'queued',     NULL),
    ('start',           'queued',     'processing', 'has_attempts_left'),
    ('progress',        'processing', 'processing', NULL),
    ('complete',        'processing', 'completed',  NULL),
    ('fail',            'processing', 'failed',     NULL),
    ('cancel',          'queued',     'cancelled',  NULL),
    ('cancel',          'processing', 'cancelled',  NULL),
    ('retry',           'failed',     'queued',     NULL),
    ('retry',           'cancelled',  'queued',     NULL),
    ('time_out',        'processing', 'queued',     'has_attempts_left'),
    ('time_out',        'processing', 'failed',     'attempts_exhausted'),
    ('update_metadata', 'queued',     'queued',     NULL),
    ('update_metadata', 'processing', 'processing', NULL),
    ('update_metadata', 'completed',  'completed',  NULL),
    ('update_metadata', 'failed',     'failed',     NULL),
    ('update_metadata', 'cancelled',  'cancelled',  NULL),
    ('delete',          'queued',     'deleted',    NULL),
    ('delete',          'completed',  'deleted',    NULL),
    ('delete',          'failed',     'deleted',    NULL),
    ('delete',          'cancelled',  'deleted',    NULL);

-- Identity, Supabase/PostgREST compatible: the `sub` claim of request.jwt.claims,
-- falling back to the older request.jwt.claim.sub setting. Set per transaction only.
CREATE FUNCTION vjm.current_user_id() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        nullif(nullif(current_setting('request.jwt.claims', true), ''), 'null')::jsonb ->> 'sub',
        nullif(current_setting('request.jwt.claim.sub', true), '')
    )
$$;

-- The append-only log. `position` orders appends, `xact_id` lets readers find a
-- commit-safe horizon (see listeners/), (job_id, version) is the per-job stream:
-- unique and gap-free, because vjm.append_event computes version from the head
-- and the unique index rejects the loser of a race. Only that function writes here;
-- the one CHECK below (job_events_legal_transition) is a second line of defence for
-- the owner. Structural CHECKs were measured and dropped: PostgreSQL compiles every
-- CHECK again for each INSERT statement, and eight of them cost 20-30 us per append,
-- more than the insert itself.
CREATE TABLE vjm.job_events (
    position      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xact_id       xid8        NOT NULL DEFAULT pg_current_xact_id(),
    job_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    version       integer     NOT NULL,
    type          text        NOT NULL,
    from_state    text,
    to_state      text        NOT NULL,
    attempt       integer     NOT NULL,
    attempts_left smallint    NOT NULL,
    data          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    actor         text        NOT NULL,
    user_id       text        NOT NULL,
    team_id       uuid,
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    prev_hash     bytea,
    hash          bytea       NOT NULL,
    CONSTRAINT job_events_stream UNIQUE (job_id, version)
);

CREATE INDEX job_events_commit_order ON vjm.job_events (xact_id, position);

-- Every stored (type, from_state, to_state) is a row of vjm.transitions: a CHECK
-- generated from the table, so the two cannot disagree. A constant-array lookup:
-- twenty OR-ed comparisons cost 50 us to compile on every INSERT, this costs 4 us.
DO $$
DECLARE
    legal text[];
BEGIN
    SELECT array_agg(trigger || ':' || CASE from_state WHEN 'absent' THEN '' ELSE from_state END || ':' || to_state)
      INTO legal FROM vjm.transitions;
    EXECUTE format('ALTER TABLE vjm.job_events ADD CONSTRAINT job_events_legal_transition'
                   ' CHECK ((type || '':'' || coalesce(from_state, '''') || '':'' || to_state) = ANY (%L::text[]))',
                   legal);
END
$$;

-- The tamper-evidence chain: each event hashes its own content and the previous
-- event's hash. Formatting is explicit so that no session setting changes it.
CREATE FUNCTION vjm.event_hash(
    prev_hash bytea, job_id uuid, version integer, type text, from_state text,
    to_state text, attempt integer, data jsonb, actor text, user_id text,
    team_id uuid, occurred_at timestamptz
) RETURNS bytea
-- STABLE, not IMMUTABLE: extract() on timestamptz is stable, and the planner inlines a
-- SQL function only when its body is no more volatile than its label. Inlined, it
-- costs a few microseconds; executed as a function, it was re-planned in every
-- transaction and cost more than the INSERT itself. The result does not depend on
-- any setting: the epoch is in microseconds UTC, the rest are canonical text forms.
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(coalesce(prev_hash, '\x'::bytea) || convert_to(concat_ws(chr(31),
        job_id::text, version::text, type, coalesce(from_state, ''), to_state,
        attempt::text, data::text, actor, user_id, coalesce(team_id::text, ''),
        (extract(epoch FROM occurred_at) * 1000000)::bigint::text), 'UTF8'))
$$;

-- Authorisation hooks used by the append functions. Here every caller is trusted;
-- the security migration redefines both with the role and RLS rules.
CREATE FUNCTION vjm.can_see_job(job_user_id text, job_team_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT true $$;

CREATE FUNCTION vjm.may_fire(trigger text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT true $$;

-- Why an append was refused, as a typed error. Only called after the guarded
-- INSERT matched no row, so it never runs on the happy path.
CREATE FUNCTION vjm.raise_refusal(p_job_id uuid, p_type text, p_expected_version integer, p_attempt integer)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head record;
BEGIN
    SELECT e.version, e.to_state, e.attempt, e.attempts_left, e.user_id, e.team_id INTO head
      FROM vjm.job_events e WHERE e.job_id = p_job_id ORDER BY e.version DESC LIMIT 1;
    IF NOT FOUND OR NOT vjm.can_see_job(head.user_id, head.team_id) THEN
        RAISE EXCEPTION 'job % not found', p_job_id USING ERRCODE = 'VJ404';
    END IF;
    IF NOT vjm.may_fire(p_type) THEN
        RAISE EXCEPTION 'not allowed to % job %', p_type, p_job_id USING ERRCODE = '42501', DETAIL = head.to_state;
    END IF;
    IF p_expected_version IS NOT NULL AND p_expected_version <> head.version THEN
        RAISE EXCEPTION 'job % is at version %, expected %', p_job_id, head.version, p_expected_version
            USING ERRCODE = 'VJ409', DETAIL = head.to_state;
    END IF;
    IF p_attempt IS NOT NULL AND p_attempt <> head.attempt AND head.to_state = 'processing'
       AND p_type IN ('progress', 'complete', 'fail', 'time_out') THEN
        RAISE EXCEPTION 'attempt % of job % is stale, current attempt is %', p_attempt, p_job_id, head.attempt
            USING ERRCODE = 'VJ423', DETAIL = head.to_state, HINT = head.attempt::text;
    END IF;
    RAISE EXCEPTION 'cannot % job % in state %', p_type, p_job_id, head.to_state
        USING ERRCODE = 'VJ422', DETAIL = head.to_state;
END
$$;

-- The append. This is the only way into vjm.job_events: no run-time role may
-- INSERT into the table, so Python, a processor written in Go and a psql session
-- all pass through the same guard. One statement does the work: it reads the
-- job's head (latest event), joins the transition table, checks the expected
-- version and the attempt fence, computes the new version, states, attempt
-- counters and hash, and inserts; a race loser hits the unique (job_id, version)
-- index. A set-based guard costs about half of what a per-row trigger did.
CREATE FUNCTION vjm.append_event(
    p_job_id uuid, p_type text, p_data jsonb DEFAULT '{}', p_actor text DEFAULT NULL,
    p_expected_version integer DEFAULT NULL, p_attempt integer DEFAULT NULL,
    p_user_id text DEFAULT NULL, p_team_id uuid DEFAULT NULL
) RETURNS vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ev vjm.job_events;
    at timestamptz := clock_timestamp();
    who text := CASE WHEN vjm.may_fire('start') THEN coalesce(p_actor, vjm.current_user_id(), session_user) ELSE vjm.current_user_id() END;  -- only trusted callers name the actor; end users are recorded as their verified identity
    fresh_budget smallint;
BEGIN
    IF jsonb_typeof(p_data) IS DISTINCT FROM 'object' OR length(who) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'data must be a JSON object and actor 1-200 characters' USING ERRCODE = '22023';
    END IF;
    IF p_type = 'retry' THEN
        -- A retry grants a fresh attempt budget: the job's max_attempts, from its create event.
        -- (As a correlated sub-select inside the INSERT this cost 150 us on every append.)
        SELECT coalesce((c.data ->> 'max_attempts')::smallint, 3) INTO fresh_budget
          FROM vjm.job_events c WHERE c.job_id = p_job_id AND c.version = 1;
    END IF;
    IF p_type = 'create' THEN
        IF p_user_id IS NULL OR length(p_user_id) NOT BETWEEN 1 AND 128 THEN
            RAISE EXCEPTION 'user_id must be 1-128 characters' USING ERRCODE = '22023';
        END IF;
        IF NOT (vjm.may_fire('create') AND vjm.can_see_job(p_user_id, p_team_id)) THEN
            RAISE EXCEPTION 'not allowed to create a job for user % in team %', p_user_id, p_team_id
                USING ERRCODE = '42501';
        END IF;
        INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                    data, actor, user_id, team_id, occurred_at, prev_hash, hash)
        VALUES (p_job_id, 1, 'create', NULL, 'queued', 0, coalesce((p_data ->> 'max_attempts')::smallint, 3),
                p_data, who, p_user_id, p_team_id, at, NULL,
                vjm.event_hash(NULL, p_job_id, 1, 'create', NULL, 'queued', 0, p_data, who, p_user_id, p_team_id, at))
        RETURNING * INTO ev;
    ELSE
        WITH head AS (
            SELECT e.* FROM vjm.job_events e WHERE e.job_id = p_job_id ORDER BY e.version DESC LIMIT 1
        ), next AS (
            SELECT h.job_id, h.version + 1 AS version, h.to_state AS from_state, t.to_state,
                   h.attempt + (p_type = 'start')::int AS attempt,
                   CASE WHEN p_type = 'start' THEN h.attempts_left - 1
                        ELSE coalesce(fresh_budget, h.attempts_left) END AS attempts_left,
                   h.user_id, h.team_id, h.hash AS prev_hash
              FROM head h
              JOIN vjm.transitions t
                ON t.trigger = p_type AND t.from_state = h.to_state
               AND (t.guard IS NULL
                    OR (t.guard = 'has_attempts_left' AND h.attempts_left > 0)
                    OR (t.guard = 'attempts_exhausted' AND h.attempts_left = 0))
             WHERE (p_expected_version IS NULL OR h.version = p_expected_version)
               AND (p_attempt IS NULL OR h.attempt = p_attempt
                    OR p_type NOT IN ('progress', 'complete', 'fail', 'time_out'))
               AND vjm.may_fire(p_type) AND vjm.can_see_job(h.user_id, h.team_id)
        )
        INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                    data, actor, user_id, team_id, occurred_at, prev_hash, hash)
        SELECT n.job_id, n.version, p_type, n.from_state, n.to_state, n.attempt, n.attempts_left,
               p_data, who, n.user_id, n.team_id, at, n.prev_hash,
               vjm.event_hash(n.prev_hash, n.job_id, n.version, p_type, n.from_state, n.to_state,
                              n.attempt, p_data, who, n.user_id, n.team_id, at)
          FROM next n
        RETURNING * INTO ev;
        IF ev.position IS NULL THEN
            PERFORM vjm.raise_refusal(p_job_id, p_type, p_expected_version, p_attempt);
        END IF;
    END IF;
    -- The doorbell: ids and states only (DESIGN invariant 7). Delivered at commit,
    -- dropped on rollback.
    PERFORM pg_notify('vjm_events', json_build_object(
        'position', ev.position, 'job_id', ev.job_id, 'version', ev.version, 'type', ev.type,
        'to_state', ev.to_state, 'user_id', ev.user_id, 'team_id', ev.team_id)::text);
    RETURN ev;
END
$$;

-- Many creates in one statement (bulk import): one round trip, one notification.
CREATE FUNCTION vjm.append_creates(
    p_job_ids uuid[], p_data jsonb[], p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS SETOF vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    last_position bigint;
    created integer;
BEGIN
    IF NOT vjm.may_fire('create') OR EXISTS (
        SELECT 1 FROM unnest(p_user_ids, p_team_ids) AS j(user_id, team_id)
         WHERE NOT vjm.can_see_job(j.user_id, j.team_id)) THEN
        RAISE EXCEPTION 'not allowed to create jobs for these users or teams' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    WITH input AS (
        SELECT j.*, clock_timestamp() AS at, CASE WHEN vjm.may_fire('start') THEN coalesce(j.actor, vjm.current_user_id(), session_user) ELSE vjm.current_user_id() END AS who
          FROM unnest(p_job_ids, p_data, p_actors, p_user_ids, p_team_ids) AS j(job_id, data, actor, user_id, team_id)
    )
    INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                data, actor, user_id, team_id, occurred_at, prev_hash, hash)
    SELECT i.job_id, 1, 'create', NULL, 'queued', 0, coalesce((i.data ->> 'max_attempts')::smallint, 3),
           i.data, i.who, i.user_id, i.team_id, i.at, NULL,
           vjm.event_hash(NULL, i.job_id, 1, 'create', NULL, 'queued', 0, i.data, i.who, i.user_id, i.team_id, i.at)
      FROM input i
    RETURNING *;
    GET DIAGNOSTICS created = ROW_COUNT;
    PERFORM pg_notify('vjm_events', json_build_object('type', 'create', 'count', created)::text);
END
$$;

REVOKE ALL ON FUNCTION vjm.append_event(uuid, text, jsonb, text, integer, integer, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION vjm.append_creates(uuid[], jsonb[], text[], text[], uuid[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION vjm.raise_refusal(uuid, text, integer, integer) FROM PUBLIC;

-- Append-only, for everyone including the owner. Statement-level, so that an
-- UPDATE or DELETE matching no row fails too. ENABLE ALWAYS keeps both triggers
-- firing under session_replication_role = replica.
CREATE FUNCTION vjm.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vjm.job_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'VJ400';
END
$$;

CREATE TRIGGER job_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON vjm.job_events
    FOR EACH STATEMENT EXECUTE FUNCTION vjm.refuse_event_change();

ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only;
