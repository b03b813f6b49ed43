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
-- commit-safe horizon (see listeners/projector.py), (job_id, version) is the
-- per-job stream: unique and gap-free, because the guard below computes version
-- from the head and the unique index rejects the loser of a race.
CREATE TABLE vjm.job_events (
    position      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xact_id       xid8        NOT NULL DEFAULT pg_current_xact_id(),
    job_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    version       integer     NOT NULL CHECK (version >= 1),
    type          text        NOT NULL,
    from_state    text,
    to_state      text        NOT NULL,
    attempt       integer     NOT NULL CHECK (attempt >= 0),
    attempts_left smallint    NOT NULL CHECK (attempts_left >= 0),
    data          jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    actor         text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    user_id       text        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    team_id       uuid,
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    prev_hash     bytea,
    hash          bytea       NOT NULL,
    CONSTRAINT job_events_stream UNIQUE (job_id, version),
    CONSTRAINT job_events_create_first CHECK ((version = 1) = (type = 'create')),
    CONSTRAINT job_events_from_state CHECK ((from_state IS NULL) = (type = 'create'))
);

CREATE INDEX job_events_commit_order ON vjm.job_events (xact_id, position);

-- The tamper-evidence chain: each event hashes its own content and the previous
-- event's hash. Formatting is explicit so that no session setting changes it.
CREATE FUNCTION vjm.event_hash(
    prev_hash bytea, job_id uuid, version integer, type text, from_state text,
    to_state text, attempt integer, data jsonb, actor text, user_id text,
    team_id uuid, occurred_at timestamptz
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(coalesce(prev_hash, '\x'::bytea) || convert_to(concat_ws(chr(31),
        job_id::text, version::text, type, coalesce(from_state, ''), to_state,
        attempt::text, data::text, actor, user_id, coalesce(team_id::text, ''),
        (extract(epoch FROM occurred_at) * 1000000)::bigint::text), 'UTF8'))
$$;

-- The guard. Every INSERT, from Python or from raw SQL in any language, passes here:
-- it reads the job's head (latest event), checks the transition table, the
-- optional expected version (NEW.version) and the attempt fence (NEW.attempt),
-- and fills in everything the writer must not choose. Readers of the head run
-- under the caller's RLS, so a job the caller cannot see is "not found".
CREATE FUNCTION vjm.guard_job_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head   record;
    target text;
BEGIN
    NEW.xact_id := pg_current_xact_id();
    NEW.occurred_at := clock_timestamp();
    NEW.actor := coalesce(NEW.actor, vjm.current_user_id(), session_user);
    IF NEW.type = 'create' THEN
        IF NEW.version IS NOT NULL AND NEW.version <> 1 THEN
            RAISE EXCEPTION 'job % already exists', NEW.job_id USING ERRCODE = 'VJ409';
        END IF;
        NEW.version := 1;
        NEW.from_state := NULL;
        NEW.to_state := 'queued';
        NEW.attempt := 0;
        NEW.attempts_left := coalesce((NEW.data ->> 'max_attempts')::smallint, 3);
        NEW.prev_hash := NULL;
    ELSE
        SELECT e.version, e.to_state, e.attempt, e.attempts_left, e.user_id, e.team_id, e.hash
          INTO head
          FROM vjm.job_events e
         WHERE e.job_id = NEW.job_id
         ORDER BY e.version DESC
         LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'job % not found', NEW.job_id USING ERRCODE = 'VJ404';
        END IF;
        IF NEW.version IS NOT NULL AND NEW.version <> head.version + 1 THEN
            RAISE EXCEPTION 'job % is at version %, expected %', NEW.job_id, head.version, NEW.version - 1
                USING ERRCODE = 'VJ409', DETAIL = head.to_state;
        END IF;
        IF NEW.attempt IS NOT NULL AND NEW.attempt <> head.attempt
           AND NEW.type IN ('progress', 'complete', 'fail', 'time_out') THEN
            RAISE EXCEPTION 'attempt % of job % is stale, current attempt is %', NEW.attempt, NEW.job_id, head.attempt
                USING ERRCODE = 'VJ423', DETAIL = head.to_state, HINT = head.attempt::text;
        END IF;
        SELECT t.to_state INTO target
          FROM vjm.transitions t
         WHERE t.trigger = NEW.type AND t.from_state = head.to_state
           AND (t.guard IS NULL
                OR (t.guard = 'has_attempts_left' AND head.attempts_left > 0)
                OR (t.guard = 'attempts_exhausted' AND head.attempts_left = 0));
        IF target IS NULL THEN
            RAISE EXCEPTION 'cannot % job % in state %', NEW.type, NEW.job_id, head.to_state
                USING ERRCODE = 'VJ422', DETAIL = head.to_state;
        END IF;
        NEW.version := head.version + 1;
        NEW.from_state := head.to_state;
        NEW.to_state := target;
        NEW.attempt := head.attempt + (NEW.type = 'start')::int;
        NEW.attempts_left := CASE NEW.type
            WHEN 'start' THEN head.attempts_left - 1
            WHEN 'retry' THEN (SELECT coalesce((c.data ->> 'max_attempts')::smallint, 3)
                                 FROM vjm.job_events c WHERE c.job_id = NEW.job_id AND c.version = 1)
            ELSE head.attempts_left END;
        NEW.user_id := head.user_id;
        NEW.team_id := head.team_id;
        NEW.prev_hash := head.hash;
    END IF;
    NEW.hash := vjm.event_hash(NEW.prev_hash, NEW.job_id, NEW.version, NEW.type, NEW.from_state,
        NEW.to_state, NEW.attempt, NEW.data, NEW.actor, NEW.user_id, NEW.team_id, NEW.occurred_at);
    -- The doorbell. Ids and states only (DESIGN invariant 7); delivered at commit,
    -- dropped on rollback.
    PERFORM pg_notify('vjm_events', json_build_object(
        'position', NEW.position, 'job_id', NEW.job_id, 'version', NEW.version,
        'type', NEW.type, 'to_state', NEW.to_state,
        'user_id', NEW.user_id, 'team_id', NEW.team_id)::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER job_events_guard BEFORE INSERT ON vjm.job_events
    FOR EACH ROW EXECUTE FUNCTION vjm.guard_job_event();

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

ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_guard;
ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only;
