-- The write API: the run queue, the guard, and the entry points over it.
--
-- vjm.guard_append is the one place that decides and inserts transitions. It takes a
-- batch (one item is a batch of one) and, for each item: reads the job's head (its latest
-- event), checks the caller's rights, the expected version, the attempt fence and the
-- transition, computes the new version, states, attempt counters and hash from the head
-- and the event alone, inserts the event, and keeps the run queue exact, all in the
-- caller's transaction. Its entry points are thin:
--   vjm.append_event         one transition, raises the refusal          (any caller)
--   vjm.append_events        up to 50 transitions, a result per item     (any caller)
--   vjm.claim_jobs           start the oldest queued jobs                (processors)
--   vjm.append_create_batch  many creates, all or nothing                (users, admins)
--   vjm.append_creates       the same, jsonb[] in and whole rows out     (users, admins)
--
-- Refusals, as SQLSTATEs (store/errors.py maps them to the Python errors):
--   22023 bad arguments        VJ404 no such job (or not visible to the caller)
--   42501 not allowed          VJ409 expected version differs, or another writer won the race
--   VJ422 illegal transition   VJ423 stale attempt (detail: the state, hint: the current attempt)
--   VJ424, VJ425 a create's idempotency key (062_idempotency.sql)
SET LOCAL ROLE vjm_owner;

-- The run queue: one entry per job that is not deleted, `queued` exactly while its head
-- event says queued. Part of the write model, kept by the guard in the append transaction,
-- so claims never depend on the projector. It also holds what a job keeps across its
-- attempts (its place in the queue, its current platform and its attempt budget), so that
-- no write reads more of a job than its head.
--
-- Lock order: a writer whose trigger moves a job in the queue (vjm.moves_in_queue) locks the
-- job's entry BEFORE it reads the head, and a claimer locks entries (FOR UPDATE SKIP LOCKED)
-- before it appends. So a cancel racing a claim waits for the claim, then sees the job
-- processing, instead of the two deadlocking on the event index.
CREATE TABLE vjm.run_queue (
    job_id          uuid        PRIMARY KEY,
    created_at      timestamptz NOT NULL,  -- the create event's: claims take the oldest first
    platform_target text,
    max_attempts    smallint    NOT NULL,  -- the budget a retry grants
    queued          boolean     NOT NULL,
    user_id         text        NOT NULL,  -- the owner, as in the create event: a writer locks only
    team_id         uuid,                  -- an entry the caller may see
    worker          text,                  -- who started the current attempt (its start's worker_id, else
                                           -- its actor): the actor of its reports when none is named
    not_before      timestamptz,           -- not claimed before this: a create's run_at, a requeue's retry_after
    held            boolean     NOT NULL DEFAULT false,  -- its not_before was ahead: out of the claim order
                                           -- until a claim finds it due and releases it (vjm.held_back)
    priority        smallint    NOT NULL DEFAULT 0,  -- higher first (the create's priority, 0-9)
    processing      boolean     NOT NULL DEFAULT false,  -- started and not yet ended: what claim caps count
    fair_key        text        NOT NULL,  -- who takes turns: 'user:<id>', or 'team:<id>' (063_claims.sql)
    turn            bigint                 -- its turn within its priority (vjm.first_turn); NULL while a run_at
                                           -- holds it back: it takes its turn when a claim releases it
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
-- Vacuumed after every 5,000 dead entries, whatever the queue's size (the default waits for a fifth
-- of the table: 200,000 at a million queued). A claim and its job's end each leave a dead entry, and
-- the claims' index walk starts at the head, where the claimed jobs' dead entries are: each 1,000
-- of them costs a claim tens of microseconds until vacuum removes them (bench/README.md, "W5c").
-- Vacuum here is cheap (the dead entries sit together: 0.3 s at a million queued).

-- Claims take the highest priority first; within a priority, fair keys take turns
-- (063_claims.sql), and within a turn the oldest goes first.
-- Held-back jobs are not in it (nor in the next two): a claim walks only what it may take, however many
-- jobs wait for tomorrow (20,000 of them made every claim 7x slower when a claim filtered them row by row).
CREATE INDEX run_queue_claim_order ON vjm.run_queue (priority DESC, turn, created_at, job_id) WHERE queued AND NOT held;
-- The same per platform: a capped claim merges the open platforms' orders when some are shut (063_claims.sql).
CREATE INDEX run_queue_platform_claim_order ON vjm.run_queue (platform_target, priority DESC, turn, created_at, job_id)
    WHERE queued AND NOT held;
-- The turn being served at each priority (vjm.first_turn): queued jobs that are not held back.
CREATE INDEX run_queue_turns ON vjm.run_queue (priority, turn) WHERE queued AND NOT held;
-- Each fair key's last turn at each priority among its claimable jobs (vjm.first_turn).
CREATE INDEX run_queue_fair_keys ON vjm.run_queue (fair_key, priority, turn) WHERE queued AND NOT held;
-- What is processing, per owner, team and platform: what claim caps count (vjm.claim_within_caps).
CREATE INDEX run_queue_processing_users ON vjm.run_queue (user_id) WHERE processing;
CREATE INDEX run_queue_processing_teams ON vjm.run_queue (team_id) WHERE processing AND team_id IS NOT NULL;
CREATE INDEX run_queue_processing_platforms ON vjm.run_queue (platform_target) WHERE processing;
-- The queued jobs held back (a create's run_at, a requeue's retry_after), by when they may be claimed: what
-- a claim releases when their time comes (vjm.claim_jobs), and how long an idle worker sleeps (vjm.next_claimable_in).
CREATE INDEX run_queue_held_back ON vjm.run_queue (not_before) WHERE queued AND held;

-- The jobs that are queued right now, in the shape operators and verify read.
CREATE VIEW vjm.job_queue WITH (security_invoker = true) AS
    SELECT q.job_id, q.created_at, q.platform_target FROM vjm.run_queue q WHERE q.queued;

-- When a job that a trigger moves in the queue may next be claimed (run_queue.not_before): a
-- requeue holds it back for its retry_after; a reschedule that names a run_at takes it; any
-- other change that keeps it queued (update_metadata, void, a reschedule of its priority alone)
-- keeps the time it had; any other way into the queue makes it claimable at once.
CREATE FUNCTION vjm.queued_not_before(type text, from_state text, at timestamptz, data jsonb, kept timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN type = 'requeue' THEN at + make_interval(secs => coalesce((data ->> 'retry_after')::float8, 0))
                WHEN type = 'reschedule' AND data ->> 'run_at' IS NOT NULL THEN (data ->> 'run_at')::timestamptz
                WHEN from_state = 'queued' THEN kept END
$$;

-- Whether an entry whose not_before is p_not_before enters the queue held back (run_queue.held): when that
-- time is still ahead. A claim releases it once it is due (vjm.claim_jobs); one that is due already is not
-- held. So a claim, whose now() is later than the writer's, never takes a job before its time.
CREATE FUNCTION vjm.held_back(p_not_before timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_not_before > now(), false)
$$;

-- What the guard appended for one item: the stored event's columns without its payload
-- (the caller has it), and the platform it names, if any (the run queue keeps it).
CREATE TYPE vjm.appended AS (
    "position" bigint, xact_id xid8, job_id uuid, version integer, type text, from_state text, to_state text,
    attempt integer, attempts_left smallint, actor text, user_id text, team_id uuid, occurred_at timestamptz,
    prev_hash bytea, hash bytea, platform_target text
);

-- A job's attempt budget: what a retry grants.
CREATE FUNCTION vjm.job_budget(p_job_id uuid) RETURNS smallint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT q.max_attempts FROM vjm.run_queue q WHERE q.job_id = p_job_id), vjm.default_max_attempts());
END
$$;

-- A transition's attempt and attempt budget, from the head's (h_*): a start begins the next attempt
-- and spends one of the budget, a retry grants the job's budget again, a release gives back the
-- attempt its start took. LANGUAGE sql: inlined into the guard's statements (one item's and a batch's).
CREATE FUNCTION vjm.next_attempt(p_type text, h_attempt integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT h_attempt + (p_type = 'start')::integer
$$;

CREATE FUNCTION vjm.next_attempts_left(p_type text, h_attempts_left smallint, p_job_id uuid) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE p_type WHEN 'start' THEN h_attempts_left - 1 WHEN 'retry' THEN vjm.job_budget(p_job_id)
                       WHEN 'release' THEN h_attempts_left + 1 ELSE h_attempts_left END
$$;

-- What the guard decided for one item: the event to append, or why not (`refusal`, NULL
-- when it may), with the head it was judged on.
CREATE TYPE vjm.decision AS (
    job_id uuid, version integer, type text, from_state text, to_state text, attempt integer,
    attempts_left smallint, data jsonb, actor text, user_id text, team_id uuid, occurred_at timestamptz,
    prev_hash bytea, hash bytea, refusal text, head_version integer, head_attempt integer
);

-- The rules of every append, here and nowhere else: what one item would append, from the
-- job's head (its latest event) and the event alone, or why it may not. In order: the
-- payload is an object and the actor (`p_who`, who is recorded) 1-200 characters; for a
-- create, the owner and the caller's right to create for them; else that the caller sees
-- the job (vjm.tenant_refusal, asked of end users only), may fire the trigger, the expected
-- version, the attempt fence, the transition, and that someone acts ('actor': the guard
-- found nobody to record); last, the payload rules of the trigger, for every caller
-- (vjm.payload_ok, compiled from statemachine's rule table: payload_rules.sql), and the
-- owner rules for this caller (vjm.may_append, in vjm.tenant_refusal). The new
-- version, states, attempt counters and hash follow from the head. Refusals: data, actor,
-- user_id (22023); create, forbidden, payload (42501); VJ404 no such job (or not
-- visible); VJ409 expected version differs; VJ422 illegal transition; VJ423 stale attempt
-- (vjm.refusal_error words them). All are LANGUAGE sql, so the planner inlines them into
-- the guard's statements: a create reads nothing (a bulk import is one statement), and a
-- transition is judged in the statement that reads its head (decide_transition takes the
-- head as arguments).
CREATE FUNCTION vjm.decide_create(
    p_job_id uuid, p_data jsonb, p_who text, p_user_id text, p_team_id uuid, p_at timestamptz, p_caller text,
    p_teams uuid[]
) RETURNS SETOF vjm.decision
LANGUAGE sql STABLE ROWS 1 AS $$
    SELECT p_job_id, 1, 'create', NULL, 'queued', 0,
           -- A cast that cannot fail: a max_attempts that breaks the rules is refused below.
           coalesce(CASE WHEN jsonb_typeof(p_data -> 'max_attempts') = 'number'
                          AND (p_data -> 'max_attempts')::numeric BETWEEN -32768 AND 32767
                         THEN (p_data -> 'max_attempts')::numeric::smallint END, vjm.default_max_attempts()),
           p_data, p_who, p_user_id,
           p_team_id, p_at, NULL::bytea,
           vjm.event_hash(NULL, p_job_id, 1, 'create', NULL, 'queued', 0, p_data, p_who, p_user_id, p_team_id, p_at),
           CASE WHEN jsonb_typeof(p_data) IS DISTINCT FROM 'object' THEN 'data'
                WHEN coalesce(length(p_user_id), 0) NOT BETWEEN 1 AND 128 THEN 'user_id'
                WHEN NOT (vjm.may_fire('create') AND vjm.can_see_job(p_user_id, p_team_id, p_caller, p_teams)) THEN 'create'
                WHEN p_who IS NULL THEN 'actor'
                WHEN length(p_who) NOT BETWEEN 1 AND 200 THEN 'data'
                WHEN NOT (vjm.payload_ok('create', p_data)
                          AND vjm.may_append('create', p_user_id, p_team_id, p_data, p_caller, p_teams))
                    THEN 'payload' END,
           NULL::integer, NULL::integer
$$;

-- A transition's refusal, from the job's head as the guard read it (h_*: its latest event;
-- all NULL when there is none) and what the transition would lead to (p_target, from
-- vjm.next_state); NULL when it may be appended. These are the rules for every caller; a
-- caller that does not see every job is judged by vjm.tenant_refusal as well.
CREATE FUNCTION vjm.decide_transition(
    p_type text, p_data jsonb, p_who text, p_attempt integer, p_expected integer, h_version integer, h_state text,
    h_attempt integer, p_target text
) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_data) IS DISTINCT FROM 'object' OR length(p_who) NOT BETWEEN 1 AND 200 THEN 'data'
                WHEN h_version IS NULL THEN 'VJ404'
                WHEN NOT vjm.may_fire(p_type) THEN 'forbidden'
                WHEN p_expected <> h_version THEN 'VJ409'
                WHEN p_attempt <> h_attempt AND vjm.fenced(p_type)
                    THEN CASE WHEN h_state = 'processing' THEN 'VJ423' ELSE 'VJ422' END
                WHEN p_target IS NULL THEN 'VJ422'
                WHEN p_who IS NULL THEN 'actor'  -- after the rules: a refused report says why
                WHEN NOT vjm.payload_ok(p_type, p_data) THEN 'payload' END
$$;

-- The refusal of a transition for a caller that does not see every job (an end user), given
-- the verdict of vjm.decide_transition: a job the caller may not see is refused as missing,
-- before any other rule but the argument check (a missing job and another tenant's are one
-- refusal after the same reads: no existence oracle); then the owner rules of the payload
-- (vjm.may_append). Trusted callers (processors, admins) see every job and may append any
-- payload the rules allow, so the guard asks this only of the others: their appends pay for it.
CREATE FUNCTION vjm.tenant_refusal(
    p_type text, p_data jsonb, p_caller text, p_teams uuid[], h_user_id text, h_team_id uuid, verdict text
) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN verdict = 'data' THEN verdict
                WHEN NOT coalesce(vjm.can_see_job(h_user_id, h_team_id, p_caller, p_teams), false) THEN 'VJ404'
                WHEN verdict IS NOT NULL THEN verdict
                WHEN NOT vjm.may_append(p_type, h_user_id, h_team_id, p_data, p_caller, p_teams) THEN 'payload' END
$$;

-- A refusal as the error a caller sees: SQLSTATE, message, detail (the job's state), hint
-- (the current attempt, for a stale one). 'race': another writer appended this version first.
CREATE FUNCTION vjm.refusal_error(
    refusal text, job_id uuid, type text, user_id text, team_id uuid, head_state text, head_version integer,
    expected integer, attempt integer, head_attempt integer
) RETURNS TABLE (code text, message text, detail text, hint text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE refusal WHEN 'data' THEN '22023' WHEN 'actor' THEN '22023' WHEN 'user_id' THEN '22023'
                        WHEN 'create' THEN '42501'
                        WHEN 'forbidden' THEN '42501' WHEN 'payload' THEN '42501' WHEN 'race' THEN 'VJ409'
                        ELSE refusal END,
           CASE refusal
               WHEN 'data' THEN 'data must be a JSON object and actor 1-200 characters'
               WHEN 'actor' THEN format('who does this %s? a trusted caller names the actor (p_actor) or sets '
                                        'vjm.principal; an end user is known by their token (request.jwt)', type)
               WHEN 'user_id' THEN 'user_id must be 1-128 characters'
               WHEN 'create' THEN format('not allowed to create a job for user %s in team %s', user_id,
                                         coalesce(team_id::text, '<NULL>'))
               WHEN 'payload' THEN format('%s of job %s refused by row-level security: its payload breaks the rules '
                                          'of %s (vjm.payload_ok), or it names an owner this caller may not write '
                                          '(vjm.may_append)', type, job_id, type)
               WHEN 'VJ404' THEN format('job %s not found', job_id)
               WHEN 'forbidden' THEN format('not allowed to %s job %s', type, job_id)
               WHEN 'VJ409' THEN format('job %s is at version %s, expected %s', job_id, head_version, expected)
               WHEN 'race' THEN format('job %s changed while this %s was being appended', job_id, type)
               WHEN 'VJ423' THEN format('attempt %s of job %s is stale, current attempt is %s', attempt, job_id,
                                        head_attempt)
               WHEN 'VJ422' THEN format('cannot %s job %s in state %s', type, job_id, head_state)
           END,
           CASE WHEN refusal NOT IN ('data', 'actor', 'user_id', 'create', 'VJ404') THEN head_state END,
           CASE WHEN refusal = 'VJ423' THEN head_attempt::text END
$$;

-- A refused item: its 1-based number in the batch, and the error a caller sees.
CREATE TYPE vjm.refusal AS (item integer, job_id uuid, code text, message text, detail text, hint text);

-- What the guard did with a batch: the events it appended (in the order inserted) and the
-- items it refused (in item order). Creates with idempotency keys (062_idempotency.sql) come
-- back as every item's create event in item order, the ones whose key named a job already too.
CREATE TYPE vjm.outcome AS (appended vjm.appended[], refused vjm.refusal[]);

-- The guard. Arrays of equal length, one element per item; either all creates or no
-- create at all (the entry points never mix them); a job at most once per call (the caller
-- splits a batch that names a job twice into rounds). p_data is a JSON array of the
-- payloads. p_user_ids and p_team_ids are read for creates only; every other event takes
-- its owner from the head. p_ring: ring the doorbell once for what was appended. p_strict:
-- raise the first refusal instead of returning it (nothing is then appended). p_locked: the
-- caller holds every item's queue entry locked already (a claim's walk locked them): the guard
-- does not lock them again.
--
-- Creates are one statement for a batch (a bulk import is one lean INSERT; a job id that
-- exists already fails the call with unique_violation); one create is a plain INSERT of the
-- same decision. One or two transitions are judged and inserted one by one, in the order
-- given (the entry points pass them by job: one lock order on the (job_id, version) index);
-- three or more are judged and inserted in item order by one statement (a claim, a write
-- combiner's round, complete_jobs), with the same rules per item (vjm.decide_transition,
-- vjm.tenant_refusal) and the run queue kept in the same statement. Either way a judgement
-- reads heads committed after the queue entries were locked. An item that lost a race with
-- another writer (the unique (job_id, version) index) is judged again on the winner's head
-- and refused: with the reason that head gives, or VJ409 'race' if there is none (the caller
-- may send it again). Only the owner may call it: the entry points below are SECURITY
-- DEFINER and pin the search_path it runs with. It returns one value, not rows, so that a
-- one-item call is one expression.
--
-- Cost: PostgreSQL prepares every plpgsql expression again in each transaction (and checks
-- the owner's EXECUTE right on every function it calls), so the one-item paths run as few
-- statements as they can, and the verdict is computed inside the statement that reads the
-- head: the expressions of a statement are freed when it ends, while a transaction's simple
-- expressions accumulate until its commit (past about 128 kB the heap was shrunk and grown
-- again by every transaction, bench/README.md 2026-12-06, third session). A batch's statement
-- costs more to start than one item's statements, and about half as much per item: from three
-- items on it costs less (bench/README.md, "the guard's batches").
CREATE FUNCTION vjm.guard_append(
    p_job_ids uuid[], p_types text[], p_data jsonb, p_actors text[], p_attempts integer[],
    p_expected_versions integer[], p_user_ids text[], p_team_ids uuid[], p_ring boolean, p_strict boolean,
    p_locked boolean DEFAULT false
) RETURNS vjm.outcome
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer := coalesce(cardinality(p_job_ids), 0);  -- creates: fewer when idempotency keys replay jobs
    trusted constant boolean := vjm.may_fire('start');  -- only trusted callers name the actor
    -- Who is recorded and judged: the verified user. A trusted caller that names every actor needs
    -- no token check (the rules let processors and admins see every job whoever they are).
    caller constant text := CASE WHEN trusted AND array_position(p_actors, NULL) IS NULL THEN NULL
                                 ELSE vjm.current_user_id() END;
    teams uuid[];            -- an end user's teams, read once for every item
    appended vjm.appended[]; -- what the outcome holds (NULL: nothing yet)
    refused vjm.refusal[];
    ev vjm.appended;
    r record;
    -- One item: its trigger, payload and actor, the head it is judged on (h_*), the event it
    -- would append (the new attempt and budget, the target state) and the verdict.
    typ text;
    item jsonb;
    who text;
    at timestamptz;
    h_version integer;
    h_state text;
    h_attempt integer;
    h_user_id text;
    h_team_id uuid;
    h_hash bytea;
    new_attempt integer;
    new_left smallint;
    target text;
    verdict text;
    raced integer;  -- the item that lost a race and is judged again
    lost integer[];  -- a batch's items that lost a race (judged again in a second pass)
    passed bigint;   -- and how many of its items passed
    rang boolean;
    keyed_ids uuid[];         -- creates with idempotency keys: per item, the job it stands for (if one replays)
    keyed vjm.appended[];     -- and then its create event (the outcome, in item order)
    share text;               -- creates: vjm.claim_settings.fair_share, read once (vjm.fair_key_under)
BEGIN
    IF NOT trusted THEN  -- trusted callers see every job
        teams := vjm.team_ids_of(caller);
    END IF;
    IF p_types[1] = 'create' THEN
        -- The caller's arrays were checked by the entry point (vjm.check_create_batch), or built by it.
        -- Job ids: an end user names none (a taken id would answer "exists" where a free
        -- one succeeds); the database issues one for every NULL. Trusted callers may name
        -- them (idempotent imports).
        -- (No sub-select: a condition with one is a query each time, also for trusted callers.)
        IF NOT trusted AND cardinality(array_remove(p_job_ids, NULL)) > 0 THEN
            RAISE EXCEPTION 'job ids are issued by the database: create with a NULL job id' USING ERRCODE = '22023';
        END IF;
        IF array_position(p_job_ids, NULL) IS NOT NULL THEN
            p_job_ids := ARRAY(SELECT coalesce(u.j, vjm.new_id()) FROM unnest(p_job_ids) WITH ORDINALITY AS u(j, k)
                                ORDER BY u.k);
        END IF;
        -- Every team a create names is live, and stays so until this transaction ends (FOR KEY
        -- SHARE, against vjm.delete_team), for every caller: so vjm.jobs.team_id's foreign key can
        -- never stop the projector. (For an end user vjm.may_create asks for membership too.)
        IF cardinality(array_remove(p_team_ids, NULL)) > 0 THEN
            PERFORM 1 FROM vjm.teams t
             WHERE t.team_id IN (SELECT DISTINCT x FROM unnest(p_team_ids) AS x WHERE x IS NOT NULL)
             ORDER BY t.team_id FOR KEY SHARE OF t;
            -- A new statement, so a new snapshot: a deletion that committed before the lock shows.
            SELECT i.user_id, i.team_id INTO r
              FROM unnest(p_user_ids, p_team_ids) AS i(user_id, team_id)
             WHERE i.team_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM vjm.teams t WHERE t.team_id = i.team_id AND t.deleted_at IS NULL)
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'not allowed to create a job for user % in team %', r.user_id, r.team_id
                    USING ERRCODE = '42501';
            END IF;
        END IF;
        -- Who a trusted caller acts as when it names no actor: the service principal the session
        -- names (SET vjm.principal = 'billing-service'). Never the database login: an auditor asks
        -- who acted, and a pool's login is not an answer. With neither: refused.
        who := CASE WHEN trusted THEN nullif(current_setting('vjm.principal', true), '') END;
        -- Idempotency keys (062_idempotency.sql), one check for creates without: each key is taken
        -- for its job; an item whose key is taken already stands for that job and is left out below.
        IF jsonb_path_exists(p_data, '$[*].idempotency_key') THEN
            SELECT t.* INTO keyed_ids, p_job_ids, p_data, p_actors, p_user_ids, p_team_ids
              FROM vjm.take_idempotency_keys(p_job_ids, p_data, p_actors, p_user_ids, p_team_ids, trusted, caller,
                                             teams, who) t;
            n := coalesce(cardinality(p_job_ids), 0);
        END IF;
        SELECT s.fair_share INTO share FROM vjm.claim_settings s;
        IF n = 1 THEN
            -- One create: the same rules (vjm.decide_create), without a batch's machinery.
            at := clock_timestamp();
            who := CASE WHEN trusted THEN coalesce(p_actors[1], caller, who) ELSE caller END;
            INSERT INTO vjm.job_events AS e (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                             data, actor, user_id, team_id, occurred_at, prev_hash, hash)
            SELECT d.job_id, d.version, d.type, d.from_state, d.to_state, d.attempt, d.attempts_left, d.data,
                   d.actor, d.user_id, d.team_id, d.occurred_at, d.prev_hash, d.hash
              FROM vjm.decide_create(p_job_ids[1], p_data -> 0, who, p_user_ids[1], p_team_ids[1], at, caller, teams) d
             WHERE d.refusal IS NULL
            RETURNING e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt,
                      e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at, e.prev_hash, e.hash,
                      e.data ->> 'platform_target' INTO ev;
            IF FOUND THEN  -- a new job enters the run queue in the same transaction
                INSERT INTO vjm.run_queue (job_id, created_at, platform_target, max_attempts, queued, user_id, team_id,
                                           priority, not_before, held, fair_key, turn)
                SELECT ev.job_id, ev.occurred_at, ev.platform_target, ev.attempts_left, true, ev.user_id, ev.team_id,
                       f.priority, f.not_before, vjm.held_back(f.not_before), f.fair_key,
                       CASE WHEN NOT vjm.held_back(f.not_before) THEN vjm.first_turn(f.priority, f.fair_key) END
                  FROM (SELECT coalesce((p_data -> 0 ->> 'priority')::smallint, 0::smallint) AS priority,
                               (p_data -> 0 ->> 'run_at')::timestamptz AS not_before,
                               vjm.fair_key_under(share, ev.user_id, ev.team_id) AS fair_key) f;
                appended := ARRAY[ev];
            END IF;
        ELSE
            -- A batch: one statement (a bulk import is one lean INSERT); a new job enters the run
            -- queue in the same statement.
            WITH inserted AS (
                INSERT INTO vjm.job_events AS e (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                                 data, actor, user_id, team_id, occurred_at, prev_hash, hash)
                SELECT d.job_id, d.version, d.type, d.from_state, d.to_state, d.attempt, d.attempts_left, d.data,
                       d.actor, d.user_id, d.team_id, d.occurred_at, d.prev_hash, d.hash
                  FROM ROWS FROM (unnest(p_job_ids), jsonb_array_elements(p_data), unnest(p_actors), unnest(p_user_ids),
                                  unnest(p_team_ids)) AS i(job_id, data, actor, user_id, team_id)
                 CROSS JOIN LATERAL (SELECT clock_timestamp() AS at,  -- once per item: its time and its hash
                                            CASE WHEN trusted THEN coalesce(i.actor, caller, who)
                                                 ELSE caller END AS who) t
                 CROSS JOIN LATERAL vjm.decide_create(i.job_id, i.data, t.who, i.user_id, i.team_id, t.at, caller,
                                                      teams) d
                 WHERE d.refusal IS NULL
                RETURNING e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt,
                          e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at, e.prev_hash, e.hash,
                          e.data ->> 'platform_target' AS platform_target, e.data ->> 'priority' AS priority,
                          e.data ->> 'run_at' AS run_at
            ), ranked AS (  -- each new job's fair key, and its place among the batch's claimable jobs of that key and
                -- priority (a job held back by its run_at takes its turn when a claim releases it)
                SELECT a.*, k.fair_key, k.held, coalesce(a.priority::smallint, 0::smallint) AS level,
                       row_number() OVER (PARTITION BY k.fair_key, coalesce(a.priority::smallint, 0::smallint), k.held
                                          ORDER BY a.position) - 1 AS rank
                  FROM inserted a
                 CROSS JOIN LATERAL (SELECT vjm.fair_key_under(share, a.user_id, a.team_id) AS fair_key,
                                            vjm.held_back(a.run_at::timestamptz) AS held) k
            ), turns AS MATERIALIZED (  -- each key's first turn, once, before any entry is inserted (an entry this
                -- statement inserted is in the index but not in its snapshot: probing after would skip them all)
                SELECT g.fair_key, g.level, vjm.first_turn(g.level, g.fair_key) AS first
                  FROM (SELECT DISTINCT b.fair_key, b.level FROM ranked b WHERE NOT b.held) g
            ), queued AS (  -- the batch's jobs of a key take that key's next turns, one after another
                INSERT INTO vjm.run_queue (job_id, created_at, platform_target, max_attempts, queued, user_id, team_id,
                                           priority, not_before, held, fair_key, turn)
                SELECT a.job_id, a.occurred_at, a.platform_target, a.attempts_left, true, a.user_id, a.team_id,
                       a.level, a.run_at::timestamptz, a.held, a.fair_key, t.first + a.rank
                  FROM ranked a
                  LEFT JOIN turns t ON t.fair_key = a.fair_key AND t.level = a.level AND NOT a.held
            )
            SELECT array_agg(ROW(a.position, a.xact_id, a.job_id, a.version, a.type, a.from_state, a.to_state, a.attempt,
                                 a.attempts_left, a.actor, a.user_id, a.team_id, a.occurred_at, a.prev_hash, a.hash,
                                 a.platform_target)::vjm.appended ORDER BY a.position)
              INTO appended FROM inserted a;
        END IF;
        IF coalesce(cardinality(appended), 0) < n THEN  -- why the rest was refused
            FOR r IN SELECT i.item, i.job_id, x.*
                       FROM ROWS FROM (unnest(p_job_ids), jsonb_array_elements(p_data), unnest(p_actors),
                                       unnest(p_user_ids), unnest(p_team_ids))
                            WITH ORDINALITY AS i(job_id, data, actor, user_id, team_id, item)
                      CROSS JOIN LATERAL vjm.decide_create(i.job_id, i.data,
                                                           CASE WHEN trusted THEN coalesce(i.actor, caller, who)
                                                                ELSE caller END, i.user_id, i.team_id, now(),
                                                           caller, teams) d
                      CROSS JOIN LATERAL vjm.refusal_error(d.refusal, i.job_id, 'create', i.user_id, i.team_id,
                                                           NULL, NULL, NULL, NULL, NULL) x
                      WHERE d.refusal IS NOT NULL
                      ORDER BY i.item LOOP
                IF p_strict THEN
                    RAISE EXCEPTION USING ERRCODE = r.code, MESSAGE = r.message, DETAIL = coalesce(r.detail, ''),
                                          HINT = coalesce(r.hint, '');
                END IF;
                refused := refused || ROW(r.item, r.job_id, r.code, r.message, r.detail, r.hint)::vjm.refusal;
            END LOOP;
        END IF;
        IF keyed_ids IS NOT NULL THEN  -- a key named a job already: every item's create event, replayed or new
            keyed := vjm.create_events_of(keyed_ids);
        END IF;
    ELSE
        -- Queue entries first (the lock order above), in job order, each by its key. Only an entry
        -- the caller may see is locked (the filter runs before the lock): a caller who names
        -- another tenant's job in vjm.append_events (refusals come back as rows) and keeps the
        -- transaction open holds nothing that claims would have to skip.
        IF n > 1 THEN
            IF (SELECT count(DISTINCT j) FROM unnest(p_job_ids) AS j) <> n THEN
                RAISE EXCEPTION 'a job may appear once per call' USING ERRCODE = '22023';
            END IF;
            -- (The arrays behind a sub-select: the estimate no longer follows their length, so the plan
            -- stays generic; with unnest(p_job_ids) a batch of 2-7 was planned anew at every call.)
            IF NOT p_locked THEN
                PERFORM 1 FROM unnest((SELECT p_job_ids), (SELECT p_types)) AS i(id, t)
                  JOIN vjm.run_queue q ON q.job_id = i.id
                 WHERE vjm.moves_in_queue(i.t) AND vjm.can_see_job(q.user_id, q.team_id, caller, teams)
                 ORDER BY q.job_id FOR UPDATE OF q;  -- one statement; rows are locked in the order sorted
            END IF;
            IF n >= 3 AND NOT (p_types && ARRAY['reschedule', 'delete']) THEN
                -- A batch of three or more: every item judged on its head by the rules one item is judged
                -- by, and the items that pass appended in item order, the run queue following, all in one
                -- statement (bench/README.md, "the guard's batches": per item about half the statements'
                -- cost; two items still cost less one by one). Items that lost a race are judged once more
                -- on the winner's head (pass 2: refused with its reason, or 'race'), as one item is.
                -- One by one: a reschedule (each takes its key's next turn in turn, which one statement
                -- would give to all alike) and a delete (its queue entry goes).
                who := CASE WHEN trusted THEN nullif(current_setting('vjm.principal', true), '') END;
                FOR pass IN 1 .. 2 LOOP
                    WITH judged AS MATERIALIZED (
                        SELECT i.k, i.job_id, i.typ, i.item, i.who, i.at, e.version AS h_version,
                               e.to_state AS h_state, e.attempt AS h_attempt, e.user_id AS h_user_id,
                               e.team_id AS h_team_id, e.hash AS h_hash, t.target,
                               vjm.next_attempt(i.typ, e.attempt) AS new_attempt,
                               vjm.next_attempts_left(i.typ, e.attempts_left, i.job_id) AS new_left,
                               CASE WHEN trusted THEN d.verdict
                                    ELSE vjm.tenant_refusal(i.typ, i.item, caller, teams, e.user_id, e.team_id,
                                                            d.verdict) END AS verdict
                          -- (generate_subscripts: no estimate from the array's length, so one plan for the
                          -- session; each lateral below is a lookup per item, whatever the estimate)
                          FROM generate_subscripts(p_job_ids, 1) AS s(k)
                         CROSS JOIN LATERAL (  -- the item, its actor as one item finds it, and its time
                             SELECT s.k, p_job_ids[s.k] AS job_id, p_types[s.k] AS typ, p_data -> (s.k - 1) AS item,
                                    CASE WHEN trusted
                                         THEN coalesce(p_actors[s.k], caller,
                                                       CASE WHEN vjm.worker_report(p_types[s.k])
                                                            THEN (SELECT q.worker FROM vjm.run_queue q
                                                                   WHERE q.job_id = p_job_ids[s.k]) END, who)
                                         ELSE caller END AS who,
                                    clock_timestamp() AS at
                             OFFSET 0) i
                          LEFT JOIN LATERAL (SELECT e.version, e.to_state, e.attempt, e.attempts_left, e.user_id,
                                                    e.team_id, e.hash
                                               FROM vjm.job_events e WHERE e.job_id = i.job_id
                                              ORDER BY e.version DESC LIMIT 1) e ON true
                         CROSS JOIN LATERAL (SELECT vjm.next_state(i.typ, e.to_state, e.attempts_left) AS target) t
                         CROSS JOIN LATERAL (
                             SELECT coalesce(vjm.decide_transition(i.typ, i.item, i.who, p_attempts[i.k],
                                                                   p_expected_versions[i.k], e.version, e.to_state,
                                                                   e.attempt, t.target),
                                             CASE WHEN pass = 2 THEN 'race' END) AS verdict) d
                         WHERE pass = 1 OR s.k = ANY (lost)
                    ), inserted AS (
                        INSERT INTO vjm.job_events AS e (job_id, version, type, from_state, to_state, attempt,
                                                         attempts_left, data, actor, user_id, team_id, occurred_at,
                                                         prev_hash, hash)
                        SELECT j.job_id, j.h_version + 1, j.typ, j.h_state, j.target, j.new_attempt, j.new_left,
                               j.item, j.who, j.h_user_id, j.h_team_id, j.at, j.h_hash,
                               vjm.event_hash(j.h_hash, j.job_id, j.h_version + 1, j.typ, j.h_state, j.target,
                                              j.new_attempt, j.item, j.who, j.h_user_id, j.h_team_id, j.at)
                          FROM judged j WHERE j.verdict IS NULL ORDER BY j.k
                        ON CONFLICT (job_id, version) DO NOTHING
                        RETURNING e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state,
                                  e.attempt, e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at,
                                  e.prev_hash, e.hash, e.data
                    ), moved AS (  -- the run queue follows the log: the one-item UPDATE below, per row
                        UPDATE vjm.run_queue q
                           SET queued = (a.to_state = 'queued'), processing = (a.to_state = 'processing'),
                               platform_target = coalesce(a.data ->> 'platform_target', q.platform_target),
                               priority = coalesce((a.data ->> 'priority')::smallint, q.priority),
                               -- The turn after the move: a reschedule whose run_at holds the job back leaves
                               -- it none (it takes one when a claim releases it); a job moved to another
                               -- priority, or queued without one (held back, then started or rescheduled to
                               -- now), takes its key's next turn; any other keeps its turn (a retry, a
                               -- time_out, a release, a requeue: served ahead of newer work). Written out
                               -- here and below: as a SQL function with these arguments it was not inlined,
                               -- and was planned at every call (70 us of a one-job claim).
                               turn = CASE WHEN a.type = 'reschedule'
                                            AND vjm.held_back(vjm.queued_not_before(a.type, a.from_state,
                                                                                    a.occurred_at, a.data,
                                                                                    q.not_before)) THEN NULL
                                           WHEN a.to_state = 'queued'
                                            AND ((a.data ->> 'priority')::smallint <> q.priority OR q.turn IS NULL)
                                            AND NOT vjm.held_back(vjm.queued_not_before(a.type, a.from_state,
                                                                                        a.occurred_at, a.data,
                                                                                        q.not_before))
                                               THEN vjm.first_turn(coalesce((a.data ->> 'priority')::smallint,
                                                                            q.priority), q.fair_key)
                                           ELSE q.turn END,
                               worker = CASE WHEN a.type = 'start' THEN coalesce(a.data ->> 'worker_id', a.actor)
                                             ELSE q.worker END,
                               not_before = vjm.queued_not_before(a.type, a.from_state, a.occurred_at, a.data,
                                                                  q.not_before),
                               held = vjm.held_back(vjm.queued_not_before(a.type, a.from_state, a.occurred_at,
                                                                          a.data, q.not_before))
                          FROM inserted a
                         WHERE q.job_id = a.job_id AND vjm.moves_in_queue(a.type)
                    )
                    SELECT appended || (SELECT array_agg(ROW(a.position, a.xact_id, a.job_id, a.version, a.type,
                                                             a.from_state, a.to_state, a.attempt, a.attempts_left,
                                                             a.actor, a.user_id, a.team_id, a.occurred_at, a.prev_hash,
                                                             a.hash, a.data ->> 'platform_target')::vjm.appended
                                                         ORDER BY a.position) FROM inserted a),
                           refused || (SELECT array_agg(ROW(j.k, j.job_id, x.code, x.message, x.detail,
                                                            x.hint)::vjm.refusal ORDER BY j.k)
                                         FROM judged j
                                        CROSS JOIN LATERAL vjm.refusal_error(j.verdict, j.job_id, j.typ, j.h_user_id,
                                                                             j.h_team_id, j.h_state, j.h_version,
                                                                             p_expected_versions[j.k], p_attempts[j.k],
                                                                             j.h_attempt) x
                                        WHERE j.verdict IS NOT NULL),
                           (SELECT count(*) FROM judged j WHERE j.verdict IS NULL)
                      INTO appended, refused, passed;
                    IF pass = 2 THEN  -- the race's refusals after the others: in item order again
                        refused := ARRAY(SELECT x FROM unnest(refused) AS x ORDER BY x.item);
                        EXIT;
                    END IF;
                    EXIT WHEN coalesce(cardinality(appended), 0) = passed;
                    -- Items that passed and did not go in: the index refused them (another writer won the race).
                    lost := ARRAY(SELECT s.k FROM generate_subscripts(p_job_ids, 1) AS s(k)
                                   WHERE s.k <> ALL (SELECT f.item FROM unnest(refused) AS f)
                                     AND p_job_ids[s.k] <> ALL (SELECT a.job_id FROM unnest(appended) AS a)
                                   ORDER BY s.k);
                END LOOP;
                IF p_strict AND refused IS NOT NULL THEN
                    RAISE EXCEPTION USING ERRCODE = (refused[1]).code, MESSAGE = (refused[1]).message,
                                          DETAIL = coalesce((refused[1]).detail, ''),
                                          HINT = coalesce((refused[1]).hint, '');
                END IF;
                n := 0;  -- nothing is left to take one by one
            END IF;
        ELSIF vjm.moves_in_queue(p_types[1]) AND NOT p_locked THEN
            PERFORM 1 FROM vjm.run_queue q
             WHERE q.job_id = p_job_ids[1] AND vjm.can_see_job(q.user_id, q.team_id, caller, teams) FOR UPDATE;
        END IF;
        FOR k IN 1 .. n LOOP
            typ := p_types[k];
            item := p_data -> (k - 1);
            who := CASE WHEN trusted THEN coalesce(p_actors[k], caller) ELSE caller END;
            IF who IS NULL AND trusted THEN
                -- Who a trusted caller acts as when it names no actor: a worker's report records the
                -- worker that started the attempt (run_queue.worker); anything else the service
                -- principal the session names (see the creates above).
                IF vjm.worker_report(typ) THEN
                    SELECT q.worker INTO who FROM vjm.run_queue q WHERE q.job_id = p_job_ids[k];
                END IF;
                who := coalesce(who, nullif(current_setting('vjm.principal', true), ''));
            END IF;
            at := clock_timestamp();
            -- Judged on the head (each judgement a new statement: it reads a head committed after
            -- the queue entries were locked). If another writer appended this version first (the
            -- unique (job_id, version) index), judged again on the winner's head: why it lost, or
            -- 'race' if nothing is wrong with it (the caller may send it again).
            LOOP
                -- The new event follows from the head and the event alone. The verdict is part of
                -- the statement (its expressions are freed with it).
                SELECT e.version, e.to_state, e.attempt, e.user_id, e.team_id, e.hash, t.target,
                       vjm.next_attempt(typ, e.attempt), vjm.next_attempts_left(typ, e.attempts_left, e.job_id),
                       coalesce(vjm.decide_transition(typ, item, who, p_attempts[k], p_expected_versions[k],
                                                      e.version, e.to_state, e.attempt, t.target),
                                CASE WHEN raced = k THEN 'race' END)
                  INTO h_version, h_state, h_attempt, h_user_id, h_team_id, h_hash, target, new_attempt, new_left,
                       verdict
                  FROM vjm.job_events e
                 CROSS JOIN LATERAL (SELECT vjm.next_state(typ, e.to_state, e.attempts_left) AS target) t
                 WHERE e.job_id = p_job_ids[k] ORDER BY e.version DESC LIMIT 1;
                IF NOT FOUND THEN  -- no such job: judged on no head
                    verdict := vjm.decide_transition(typ, item, who, p_attempts[k], p_expected_versions[k], NULL, NULL,
                                                     NULL, NULL);
                END IF;
                IF NOT trusted THEN
                    verdict := vjm.tenant_refusal(typ, item, caller, teams, h_user_id, h_team_id, verdict);
                END IF;
                EXIT WHEN verdict IS NOT NULL;
                INSERT INTO vjm.job_events AS e (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                                 data, actor, user_id, team_id, occurred_at, prev_hash, hash)
                VALUES (p_job_ids[k], h_version + 1, typ, h_state, target, new_attempt, new_left, item, who, h_user_id,
                        h_team_id, at, h_hash, vjm.event_hash(h_hash, p_job_ids[k], h_version + 1, typ, h_state, target,
                                                              new_attempt, item, who, h_user_id, h_team_id, at))
                ON CONFLICT (job_id, version) DO NOTHING
                RETURNING e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt,
                          e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at, e.prev_hash, e.hash,
                          e.data ->> 'platform_target' INTO ev;
                EXIT WHEN FOUND;
                raced := k;
            END LOOP;
            IF verdict IS NULL THEN
                appended := appended || ev;
                IF vjm.moves_in_queue(typ) THEN  -- the run queue follows the log, in the same transaction
                    IF typ = 'delete' THEN
                        DELETE FROM vjm.run_queue q WHERE q.job_id = ev.job_id;
                    ELSE
                        UPDATE vjm.run_queue q
                           SET queued = (target = 'queued'), processing = (target = 'processing'),
                               platform_target = coalesce(ev.platform_target, q.platform_target),
                               priority = coalesce((item ->> 'priority')::smallint, q.priority),
                               -- (the turn after the move: as in the batch's UPDATE above)
                               turn = CASE WHEN typ = 'reschedule'
                                            AND vjm.held_back(vjm.queued_not_before(typ, h_state, at, item,
                                                                                    q.not_before)) THEN NULL
                                           WHEN target = 'queued'
                                            AND ((item ->> 'priority')::smallint <> q.priority OR q.turn IS NULL)
                                            AND NOT vjm.held_back(vjm.queued_not_before(typ, h_state, at, item,
                                                                                        q.not_before))
                                               THEN vjm.first_turn(coalesce((item ->> 'priority')::smallint,
                                                                            q.priority), q.fair_key)
                                           ELSE q.turn END,
                               worker = CASE WHEN typ = 'start' THEN coalesce(item ->> 'worker_id', who) ELSE q.worker END,
                               not_before = vjm.queued_not_before(typ, h_state, at, item, q.not_before),
                               held = vjm.held_back(vjm.queued_not_before(typ, h_state, at, item, q.not_before))
                         WHERE q.job_id = ev.job_id;
                    END IF;
                END IF;
            ELSE
                SELECT x.* INTO r
                  FROM vjm.refusal_error(verdict, p_job_ids[k], typ, h_user_id, h_team_id, h_state, h_version,
                                         p_expected_versions[k], p_attempts[k], h_attempt) x;
                IF p_strict THEN
                    RAISE EXCEPTION USING ERRCODE = r.code, MESSAGE = r.message, DETAIL = coalesce(r.detail, ''),
                                          HINT = coalesce(r.hint, '');
                END IF;
                refused := refused || ROW(k, p_job_ids[k], r.code, r.message, r.detail, r.hint)::vjm.refusal;
            END IF;
        END LOOP;
    END IF;
    -- The doorbell, after every insert as it requires, once for the call: appended is in the order
    -- inserted, so its last event is the newest. (AND evaluates left to right and stops at false.)
    rang := p_ring AND appended IS NOT NULL
            AND vjm.ring_doorbell((appended[cardinality(appended)]).position, cardinality(appended));
    RETURN ROW(coalesce(keyed, appended, '{}'), coalesce(refused, '{}'));
END
$$;

-- One transition. Raises the refusal; returns the stored event. The entry point for
-- every language: Python, a processor written in Go, psql.
CREATE FUNCTION vjm.append_event(
    p_job_id uuid, p_type text, p_data jsonb DEFAULT '{}', p_actor text DEFAULT NULL,
    p_expected_version integer DEFAULT NULL, p_attempt integer DEFAULT NULL,
    p_user_id text DEFAULT NULL, p_team_id uuid DEFAULT NULL
) RETURNS vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a vjm.appended := (vjm.guard_append(ARRAY[p_job_id], ARRAY[p_type], jsonb_build_array(p_data), ARRAY[p_actor],
                                        ARRAY[p_attempt], ARRAY[p_expected_version], ARRAY[p_user_id],
                                        ARRAY[p_team_id], true, true)).appended[1];
BEGIN
    RETURN ROW(a.position, a.xact_id, a.job_id, a.version, a.type, a.from_state, a.to_state, a.attempt,
               a.attempts_left, p_data, a.actor, a.user_id, a.team_id, a.occurred_at, a.prev_hash, a.hash)::vjm.job_events;
END
$$;

-- Up to 50 transitions (no creates), each judged on its own: one round trip and one commit
-- for a processor's batch or a bulk status change. One row per item, in item order: the
-- error (error_code, error_message, error_detail, error_hint) or the appended event. A job
-- named twice takes its items in order, one round each. An item that lost a race with
-- another writer is judged again on the fresh head, at most twice more. The doorbell
-- rings once for the call.
--
-- Cost: a round's items and their arguments are gathered in one query (the first also counts
-- the rounds), and the rows go out from the arrays unnested, not element by element: a batch
-- that names each job once (a write combiner's round) runs three statements besides the guard.
CREATE FUNCTION vjm.append_events(
    p_job_ids uuid[], p_types text[], p_data jsonb[], p_actors text[], p_attempts integer[],
    p_expected_versions integer[]
) RETURNS TABLE (
    item integer, error_code text, error_message text, error_detail text, error_hint text,
    "position" bigint, xact_id xid8, job_id uuid, version integer, type text, from_state text, to_state text,
    attempt integer, attempts_left smallint, actor text, user_id text, team_id uuid, occurred_at timestamptz,
    data jsonb
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n constant integer := coalesce(cardinality(p_job_ids), 0);
    rounds integer := 1;  -- how many items the most named job has (counted by the first round's query)
    events vjm.appended[] := array_fill(NULL::vjm.appended, ARRAY[n]);  -- per item: its event,
    errors vjm.refusal[] := array_fill(NULL::vjm.refusal, ARRAY[n]);      -- or why not
    todo integer[];  -- this round's items
    ids uuid[];      -- and their jobs, triggers, payloads, actors, attempts and expected versions
    types text[];
    payloads jsonb;
    actors text[];
    attempts integer[];
    versions integer[];
    again integer[];
    o vjm.outcome;
    a vjm.appended;
    f vjm.refusal;
    applied integer := 0;
    newest bigint;
    rang boolean;
BEGIN
    IF n > 50 THEN
        RAISE EXCEPTION 'at most 50 transitions per call, got %', n USING ERRCODE = '22023';
    END IF;
    IF coalesce(cardinality(p_types), 0) <> n OR coalesce(cardinality(p_data), 0) <> n
       OR coalesce(cardinality(p_actors), 0) <> n OR coalesce(cardinality(p_attempts), 0) <> n
       OR coalesce(cardinality(p_expected_versions), 0) <> n THEN
        RAISE EXCEPTION 'every argument array must have % elements', n USING ERRCODE = '22023';
    END IF;
    IF 'create' = ANY (p_types) THEN
        RAISE EXCEPTION 'vjm.append_events takes no creates: use vjm.append_create_batch' USING ERRCODE = '22023';
    END IF;
    FOR r IN 1 .. n LOOP
        EXIT WHEN r > rounds;
        -- The r-th item of each job, in job order, and its arguments: one query for all seven.
        SELECT max(o.nth), array_agg(o.i ORDER BY o.j) FILTER (WHERE o.nth = r),
               array_agg(o.j ORDER BY o.j) FILTER (WHERE o.nth = r),
               array_agg(p_types[o.i] ORDER BY o.j) FILTER (WHERE o.nth = r),
               jsonb_agg(p_data[o.i] ORDER BY o.j) FILTER (WHERE o.nth = r),
               array_agg(p_actors[o.i] ORDER BY o.j) FILTER (WHERE o.nth = r),
               array_agg(p_attempts[o.i] ORDER BY o.j) FILTER (WHERE o.nth = r),
               array_agg(p_expected_versions[o.i] ORDER BY o.j) FILTER (WHERE o.nth = r)
          INTO rounds, todo, ids, types, payloads, actors, attempts, versions
          FROM (SELECT k.i::integer AS i, k.j, row_number() OVER (PARTITION BY k.j ORDER BY k.i)::integer AS nth
                  FROM unnest(p_job_ids) WITH ORDINALITY AS k(j, i)) AS o;
        FOR try IN 1 .. 3 LOOP
            EXIT WHEN coalesce(cardinality(todo), 0) = 0;
            IF try > 1 THEN  -- the items that lost a race, again
                SELECT array_agg(p_job_ids[t.i] ORDER BY t.n), array_agg(p_types[t.i] ORDER BY t.n),
                       jsonb_agg(p_data[t.i] ORDER BY t.n), array_agg(p_actors[t.i] ORDER BY t.n),
                       array_agg(p_attempts[t.i] ORDER BY t.n), array_agg(p_expected_versions[t.i] ORDER BY t.n)
                  INTO ids, types, payloads, actors, attempts, versions
                  FROM unnest(todo) WITH ORDINALITY AS t(i, n);
            END IF;
            o := vjm.guard_append(ids, types, payloads, actors, attempts, versions,
                                  array_fill(NULL::text, ARRAY[cardinality(todo)]),
                                  array_fill(NULL::uuid, ARRAY[cardinality(todo)]), false, false);
            again := '{}';
            FOREACH f IN ARRAY o.refused LOOP
                IF f.code = 'VJ409' AND p_expected_versions[todo[f.item]] IS NULL AND try < 3 THEN
                    again := again || todo[f.item];  -- lost a race: judge it again on the head the winner left
                ELSE
                    errors[todo[f.item]] := f;
                END IF;
            END LOOP;
            FOREACH a IN ARRAY o.appended LOOP  -- in the order inserted: the last is the newest
                events[todo[array_position(ids, a.job_id)]] := a;
            END LOOP;
            IF cardinality(o.appended) > 0 THEN
                applied := applied + cardinality(o.appended);
                newest := greatest(newest, (o.appended[cardinality(o.appended)]).position);
            END IF;
            todo := again;
        END LOOP;
    END LOOP;
    IF applied > 0 THEN
        rang := vjm.ring_doorbell(newest, applied);
    END IF;
    RETURN QUERY
    SELECT u.k::integer, u.code, u.message, u.detail, u.hint, u.pos, u.xid, u.job, u.ver, u.typ, u.from_s, u.to_s,
           u.att, u.att_left, u.who, u.owner_id, u.team, u.occurred, CASE WHEN u.pos IS NOT NULL THEN u.payload END
      FROM ROWS FROM (unnest(events), unnest(errors), unnest(p_job_ids), unnest(p_data))
           WITH ORDINALITY AS u(pos, xid, ev_job, ver, typ, from_s, to_s, att, att_left, who, owner_id, team, occurred,
                                prev_h, h, platform, f_item, f_job, code, message, detail, hint, job, payload, k);
END
$$;

-- The arrays a caller hands to a batch of creates: one element per job in each, the payloads
-- a JSON array. The transition entry points build their arrays or check them themselves.
CREATE FUNCTION vjm.check_create_batch(
    p_job_ids uuid[], p_data jsonb, p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n constant integer := coalesce(cardinality(p_job_ids), 0);
BEGIN
    IF n > 100000 THEN
        RAISE EXCEPTION 'at most 100000 creates per call, got %', n USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(p_data) IS DISTINCT FROM 'array' OR jsonb_array_length(p_data) <> n
       OR coalesce(cardinality(p_actors), 0) <> n OR coalesce(cardinality(p_user_ids), 0) <> n
       OR coalesce(cardinality(p_team_ids), 0) <> n THEN
        RAISE EXCEPTION 'every argument must have % elements', n USING ERRCODE = '22023';
    END IF;
    RETURN n;
END
$$;

-- Many creates in one statement (a bulk import), all or nothing: the payloads as one JSON
-- array, and back only what the database decided (a create's version, type, states and
-- attempt are constants), in the order given. At most 100,000 per call.
CREATE FUNCTION vjm.append_create_batch(
    p_job_ids uuid[], p_data jsonb, p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS TABLE ("position" bigint, xact_id xid8, job_id uuid, attempts_left smallint, actor text,
                 occurred_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp ROWS 10000 AS $$
DECLARE
    n constant integer := vjm.check_create_batch(p_job_ids, p_data, p_actors, p_user_ids, p_team_ids);
BEGIN
    RETURN QUERY
    SELECT a.position, a.xact_id, a.job_id, a.attempts_left, a.actor, a.occurred_at
      FROM unnest((vjm.guard_append(p_job_ids, array_fill('create'::text, ARRAY[n]), p_data, p_actors,
                                    array_fill(NULL::integer, ARRAY[n]), array_fill(NULL::integer, ARRAY[n]),
                                    p_user_ids, p_team_ids, true, true)).appended) WITH ORDINALITY a
     ORDER BY a.ordinality;  -- in the order given
END
$$;

-- vjm.append_create_batch for SQL callers: the payloads as jsonb[], the stored rows back, in
-- the order given.
CREATE FUNCTION vjm.append_creates(
    p_job_ids uuid[], p_data jsonb[], p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS SETOF vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    payloads constant jsonb := coalesce(to_jsonb(p_data), '[]');
    n constant integer := vjm.check_create_batch(p_job_ids, payloads, p_actors, p_user_ids, p_team_ids);
    o vjm.outcome;
BEGIN
    o := vjm.guard_append(p_job_ids, array_fill('create'::text, ARRAY[n]), payloads, p_actors,
                          array_fill(NULL::integer, ARRAY[n]), array_fill(NULL::integer, ARRAY[n]),
                          p_user_ids, p_team_ids, true, true);
    RETURN QUERY
    SELECT a.position, a.xact_id, a.job_id, a.version, a.type, a.from_state, a.to_state, a.attempt, a.attempts_left,
           i.data, a.actor, a.user_id, a.team_id, a.occurred_at, a.prev_hash, a.hash
      FROM unnest(o.appended) WITH ORDINALITY AS a  -- in the order given (positions follow it)
      JOIN unnest(p_data) WITH ORDINALITY AS i(data, n) ON i.n = a.ordinality
     ORDER BY i.n;
END
$$;
