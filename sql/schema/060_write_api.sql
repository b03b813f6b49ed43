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
    queued          boolean     NOT NULL
);

CREATE INDEX run_queue_claim_order ON vjm.run_queue (created_at, job_id) WHERE queued;

-- The jobs that are queued right now, in the shape operators and verify read.
CREATE VIEW vjm.job_queue WITH (security_invoker = true) AS
    SELECT q.job_id, q.created_at, q.platform_target FROM vjm.run_queue q WHERE q.queued;

-- Raise a refusal the guard decided (strict callers want the error, not a row).
CREATE FUNCTION vjm.refuse(code text, message text, detail text, hint text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = coalesce(detail, ''), HINT = coalesce(hint, '');
END
$$;

-- The guard. Arrays of equal length, one element per item; a job at most once per call
-- (the caller splits a batch that names a job twice into rounds). p_data is a JSON array
-- of the payloads. p_user_ids and p_team_ids are read for creates only; every other event
-- takes its owner from the head. p_ring: ring the doorbell once for what was appended.
-- p_strict: raise the first refusal instead of returning it (nothing is then appended).
--
-- One row per item, in item order: the appended event's columns (its payload is the
-- caller's), or the refusal (error_code and the rest). An item that lost a race with
-- another writer (the unique (job_id, version) index) is refused with VJ409 and nothing
-- else changes; the caller may send it again.
CREATE FUNCTION vjm.guard_append(
    p_job_ids uuid[], p_types text[], p_data jsonb, p_actors text[], p_attempts integer[],
    p_expected_versions integer[], p_user_ids text[], p_team_ids uuid[], p_ring boolean, p_strict boolean
) RETURNS TABLE (
    item integer, error_code text, error_message text, error_detail text, error_hint text,
    "position" bigint, xact_id xid8, job_id uuid, version integer, type text, from_state text, to_state text,
    attempt integer, attempts_left smallint, actor text, user_id text, team_id uuid, occurred_at timestamptz,
    prev_hash bytea, hash bytea
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp ROWS 50 AS $$
#variable_conflict use_column
DECLARE
    n constant integer := coalesce(cardinality(p_job_ids), 0);
    trusted constant boolean := vjm.may_fire('start');  -- only trusted callers name the actor
    caller constant text := vjm.current_user_id();
BEGIN
    IF jsonb_typeof(p_data) IS DISTINCT FROM 'array' OR jsonb_array_length(p_data) <> n
       OR coalesce(cardinality(p_types), 0) <> n OR coalesce(cardinality(p_actors), 0) <> n
       OR coalesce(cardinality(p_attempts), 0) <> n OR coalesce(cardinality(p_expected_versions), 0) <> n
       OR coalesce(cardinality(p_user_ids), 0) <> n OR coalesce(cardinality(p_team_ids), 0) <> n THEN
        RAISE EXCEPTION 'every argument must have % elements', n USING ERRCODE = '22023';
    END IF;
    IF n > 1 AND (SELECT count(DISTINCT j) FROM unnest(p_job_ids) AS j) <> n THEN
        RAISE EXCEPTION 'a job may appear once per call' USING ERRCODE = '22023';
    END IF;
    IF (n = 1 AND vjm.moves_in_queue(p_types[1])) OR n > 1 THEN
        PERFORM 1 FROM vjm.run_queue q
         WHERE q.job_id IN (SELECT i.id FROM unnest(p_job_ids, p_types) AS i(id, t) WHERE vjm.moves_in_queue(i.t))
         ORDER BY q.job_id
           FOR UPDATE OF q;
    END IF;
    -- A new statement, so a new snapshot: the heads are read after the queue entries are locked.
    RETURN QUERY
    WITH input AS (
        SELECT i.*, CASE WHEN trusted THEN coalesce(i.j_actor, caller, session_user) ELSE caller END AS who,
               clock_timestamp() AS at
          FROM ROWS FROM (unnest(p_job_ids), unnest(p_types), jsonb_array_elements(p_data), unnest(p_actors),
                          unnest(p_attempts), unnest(p_expected_versions), unnest(p_user_ids), unnest(p_team_ids))
               WITH ORDINALITY AS i(j_id, j_type, j_data, j_actor, j_attempt, j_expected, j_user, j_team, j_item)
    ), heads AS (
        SELECT i.*, h.version AS h_version, h.to_state AS h_state, h.attempt AS h_attempt,
               h.attempts_left AS h_left, h.user_id AS h_user, h.team_id AS h_team, h.hash AS h_hash,
               CASE WHEN i.j_type = 'create' THEN 'queued' ELSE vjm.next_state(i.j_type, h.to_state, h.attempts_left)
               END AS h_next
          FROM input i
          LEFT JOIN LATERAL (
                SELECT e.version, e.to_state, e.attempt, e.attempts_left, e.user_id, e.team_id, e.hash
                  FROM vjm.job_events e
                 WHERE e.job_id = i.j_id AND i.j_type <> 'create'
                 ORDER BY e.version DESC LIMIT 1) h ON true
    ), decided AS MATERIALIZED (
        SELECT h.*,
               CASE WHEN h.j_type = 'create' THEN h.j_user ELSE h.h_user END AS owner,
               CASE WHEN h.j_type = 'create' THEN h.j_team ELSE h.h_team END AS team,
               coalesce(h.h_version, 0) + 1 AS new_version,
               coalesce(h.h_attempt, 0) + (h.j_type = 'start')::integer AS new_attempt,
               CASE h.j_type
                   WHEN 'create' THEN coalesce((h.j_data ->> 'max_attempts')::smallint, vjm.default_max_attempts())
                   WHEN 'start' THEN h.h_left - 1
                   WHEN 'retry' THEN coalesce((SELECT q.max_attempts FROM vjm.run_queue q WHERE q.job_id = h.j_id),
                                              vjm.default_max_attempts())
                   ELSE h.h_left END::smallint AS new_left,
               CASE
                   WHEN jsonb_typeof(h.j_data) IS DISTINCT FROM 'object' THEN 'data'
                   WHEN h.j_type = 'create' THEN CASE
                        WHEN coalesce(length(h.j_user), 0) NOT BETWEEN 1 AND 128 THEN 'user_id'
                        WHEN NOT (vjm.may_fire('create') AND vjm.can_see_job(h.j_user, h.j_team)) THEN 'create'
                        WHEN coalesce(length(h.who), 0) NOT BETWEEN 1 AND 200 THEN 'data'
                        WHEN NOT vjm.may_append('create', h.j_user, h.j_team, h.j_data) THEN 'payload' END
                   WHEN coalesce(length(h.who), 0) NOT BETWEEN 1 AND 200 THEN 'data'
                   WHEN h.h_version IS NULL OR NOT vjm.can_see_job(h.h_user, h.h_team) THEN 'VJ404'
                   WHEN NOT vjm.may_fire(h.j_type) THEN '42501'
                   WHEN h.j_expected IS NOT NULL AND h.j_expected <> h.h_version THEN 'VJ409'
                   WHEN h.j_attempt IS NOT NULL AND h.j_attempt <> h.h_attempt AND vjm.fenced(h.j_type)
                        THEN CASE WHEN h.h_state = 'processing' THEN 'VJ423' ELSE 'VJ422' END
                   WHEN h.h_next IS NULL THEN 'VJ422'
                   WHEN NOT vjm.may_append(h.j_type, h.h_user, h.h_team, h.j_data) THEN 'payload'
               END AS refusal
          FROM heads h
    ), inserted AS (
        INSERT INTO vjm.job_events AS e (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                         data, actor, user_id, team_id, occurred_at, prev_hash, hash)
        SELECT d.j_id, d.new_version, d.j_type, d.h_state, d.h_next, d.new_attempt, d.new_left, d.j_data, d.who,
               d.owner, d.team, d.at, d.h_hash,
               vjm.event_hash(d.h_hash, d.j_id, d.new_version, d.j_type, d.h_state, d.h_next, d.new_attempt,
                              d.j_data, d.who, d.owner, d.team, d.at)
          FROM decided d
         WHERE d.refusal IS NULL
         -- Creates in the order given (their positions are the feed's order); transitions by job, one
         -- lock order on the (job_id, version) index for every batch.
         ORDER BY CASE WHEN d.j_type = 'create' THEN d.j_item END, d.j_id
        ON CONFLICT (job_id, version) DO NOTHING
        RETURNING e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt,
                  e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at, e.prev_hash, e.hash,
                  e.data ->> 'platform_target' AS platform
    ), entered AS (
        INSERT INTO vjm.run_queue (job_id, created_at, platform_target, max_attempts, queued)
        SELECT x.job_id, x.occurred_at, x.platform, x.attempts_left, true FROM inserted x WHERE x.type = 'create'
    ), moved AS (
        UPDATE vjm.run_queue q SET queued = (x.to_state = 'queued'), platform_target = coalesce(x.platform, q.platform_target)
          FROM inserted x
         WHERE q.job_id = x.job_id AND x.type NOT IN ('create', 'delete')
           AND ('queued' IN (x.from_state, x.to_state) OR x.platform IS NOT NULL)
    ), removed AS (
        DELETE FROM vjm.run_queue q USING inserted x WHERE q.job_id = x.job_id AND x.type = 'delete'
    ), rung AS (  -- after every insert of the statement (the aggregate reads them all), as the doorbell requires
        SELECT vjm.ring_doorbell(a.newest, a.appended) IS NULL AS rang
          FROM (SELECT max(x.position) AS newest, count(*)::integer AS appended FROM inserted x) a
         WHERE p_ring AND a.appended > 0
    ), outcome AS (
        SELECT d.*, x.position, x.xact_id, x.version, x.from_state, x.to_state, x.attempt, x.attempts_left,
               x.actor, x.user_id, x.team_id, x.occurred_at, x.prev_hash, x.hash,
               CASE WHEN x.position IS NOT NULL THEN NULL WHEN d.refusal IS NULL THEN 'race'
                    ELSE d.refusal END AS why
          FROM decided d
          LEFT JOIN inserted x ON x.job_id = d.j_id
          LEFT JOIN rung ON true
    ), explained AS (
        SELECT o.*,
               CASE o.why WHEN 'data' THEN '22023' WHEN 'user_id' THEN '22023' WHEN 'create' THEN '42501'
                          WHEN 'payload' THEN '42501' WHEN 'race' THEN 'VJ409' ELSE o.why END AS code,
               CASE o.why
                   WHEN 'data' THEN 'data must be a JSON object and actor 1-200 characters'
                   WHEN 'user_id' THEN 'user_id must be 1-128 characters'
                   WHEN 'create' THEN format('not allowed to create a job for user %s in team %s', o.j_user,
                                             coalesce(o.j_team::text, '<NULL>'))
                   WHEN 'payload' THEN format('%s of job %s refused by row-level security (vjm.may_append): '
                                              'a payload or owner this caller may not write', o.j_type, o.j_id)
                   WHEN 'VJ404' THEN format('job %s not found', o.j_id)
                   WHEN '42501' THEN format('not allowed to %s job %s', o.j_type, o.j_id)
                   WHEN 'VJ409' THEN format('job %s is at version %s, expected %s', o.j_id, o.h_version, o.j_expected)
                   WHEN 'race' THEN CASE WHEN o.j_type = 'create' THEN format('job %s already exists', o.j_id)
                                    ELSE format('job %s changed while this %s was being appended', o.j_id, o.j_type) END
                   WHEN 'VJ423' THEN format('attempt %s of job %s is stale, current attempt is %s', o.j_attempt,
                                            o.j_id, o.h_attempt)
                   WHEN 'VJ422' THEN format('cannot %s job %s in state %s', o.j_type, o.j_id, o.h_state)
               END AS message
          FROM outcome o
    )
    SELECT CASE WHEN p_strict AND x.why IS NOT NULL
                THEN vjm.refuse(x.code, x.message, x.h_state, CASE x.why WHEN 'VJ423' THEN x.h_attempt::text END)
                ELSE x.j_item::integer END,
           x.code, x.message, CASE WHEN x.why IS NOT NULL THEN x.h_state END,
           CASE x.why WHEN 'VJ423' THEN x.h_attempt::text END,
           x.position, x.xact_id, x.j_id, x.version, x.j_type, x.from_state, x.to_state, x.attempt, x.attempts_left,
           x.actor, x.user_id, x.team_id, x.occurred_at, x.prev_hash, x.hash
      FROM explained x
     ORDER BY x.j_item;
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
    g record;
BEGIN
    SELECT * INTO g FROM vjm.guard_append(ARRAY[p_job_id], ARRAY[p_type], jsonb_build_array(p_data), ARRAY[p_actor],
                                          ARRAY[p_attempt], ARRAY[p_expected_version], ARRAY[p_user_id],
                                          ARRAY[p_team_id], true, true);
    RETURN ROW(g.position, g.xact_id, g.job_id, g.version, g.type, g.from_state, g.to_state, g.attempt,
               g.attempts_left, p_data, g.actor, g.user_id, g.team_id, g.occurred_at, g.prev_hash, g.hash)::vjm.job_events;
END
$$;

-- Up to 50 transitions (no creates), each judged on its own: one round trip and one commit
-- for a processor's batch or a bulk status change. One row per item, in item order: the
-- error (error_code, error_message, error_detail, error_hint) or the appended event. A job
-- named twice takes its items in order, one round each. An item that lost a race with
-- another writer is judged again on the fresh head, at most twice more. The doorbell
-- rings once for the call.
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
    todo integer[];
    again integer[];
    rounds integer;
    g record;
    i integer;
    applied integer := 0;
    newest bigint;
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
    SELECT max(c) INTO rounds FROM (SELECT count(*) AS c FROM unnest(p_job_ids) AS j GROUP BY j) AS per_job;
    FOR r IN 1 .. coalesce(rounds, 0) LOOP
        -- The r-th item of each job.
        todo := ARRAY(SELECT o.i FROM (SELECT k.i, row_number() OVER (PARTITION BY k.j ORDER BY k.i) AS nth
                                         FROM unnest(p_job_ids) WITH ORDINALITY AS k(j, i)) AS o
                       WHERE o.nth = r ORDER BY o.i);
        FOR try IN 1 .. 3 LOOP
            EXIT WHEN cardinality(todo) = 0;
            again := '{}';
            FOR g IN SELECT * FROM vjm.guard_append(
                        ARRAY(SELECT p_job_ids[t] FROM unnest(todo) AS t), ARRAY(SELECT p_types[t] FROM unnest(todo) AS t),
                        to_jsonb(ARRAY(SELECT p_data[t] FROM unnest(todo) AS t)),
                        ARRAY(SELECT p_actors[t] FROM unnest(todo) AS t), ARRAY(SELECT p_attempts[t] FROM unnest(todo) AS t),
                        ARRAY(SELECT p_expected_versions[t] FROM unnest(todo) AS t),
                        array_fill(NULL::text, ARRAY[cardinality(todo)]), array_fill(NULL::uuid, ARRAY[cardinality(todo)]),
                        false, false) LOOP
                i := todo[g.item];
                IF g.error_code = 'VJ409' AND p_expected_versions[i] IS NULL AND try < 3 THEN
                    again := again || i;  -- lost a race: judge it again on the head the winner left
                    CONTINUE;
                END IF;
                item := i;
                error_code := g.error_code; error_message := g.error_message;
                error_detail := g.error_detail; error_hint := g.error_hint;
                "position" := g.position; xact_id := g.xact_id; job_id := p_job_ids[i]; version := g.version;
                type := g.type; from_state := g.from_state; to_state := g.to_state; attempt := g.attempt;
                attempts_left := g.attempts_left; actor := g.actor; user_id := g.user_id; team_id := g.team_id;
                occurred_at := g.occurred_at; data := CASE WHEN g.error_code IS NULL THEN p_data[i] END;
                RETURN NEXT;
                IF g.error_code IS NULL THEN
                    applied := applied + 1;
                    newest := greatest(newest, g.position);
                END IF;
            END LOOP;
            todo := again;
        END LOOP;
    END LOOP;
    IF applied > 0 THEN
        PERFORM vjm.ring_doorbell(newest, applied);
    END IF;
END
$$;

-- Claims: start the oldest queued jobs (optionally of one platform) for a worker. Entries
-- are locked with SKIP LOCKED, so concurrent claimers never meet. Returns the `start`
-- events, in claim order. A locked queued entry guarantees the job is queued, so a job that
-- cannot start means the queue and the log disagree: that raises, and
-- `vjm projections verify` names the job.
CREATE FUNCTION vjm.claim_jobs(p_worker_id text, p_limit integer, p_platform text DEFAULT NULL)
RETURNS SETOF vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    claimed uuid[];
    n integer;
    worker constant jsonb := jsonb_build_object('worker_id', p_worker_id);
    g record;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
    END IF;
    IF coalesce(length(p_worker_id), 0) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'worker_id must be 1-200 characters' USING ERRCODE = '22023';
    END IF;
    IF NOT vjm.may_fire('start') THEN
        RAISE EXCEPTION 'not allowed to start jobs' USING ERRCODE = '42501';
    END IF;
    SELECT array_agg(c.job_id ORDER BY c.created_at, c.job_id) INTO claimed FROM (
        SELECT q.job_id, q.created_at FROM vjm.run_queue q
         WHERE q.queued AND (p_platform IS NULL OR q.platform_target = p_platform)
         ORDER BY q.created_at, q.job_id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED) c;
    IF claimed IS NULL THEN
        RETURN;
    END IF;
    n := cardinality(claimed);
    FOR g IN SELECT * FROM vjm.guard_append(claimed, array_fill('start'::text, ARRAY[n]),
                                            (SELECT jsonb_agg(worker) FROM generate_series(1, n)),
                                            array_fill(p_worker_id, ARRAY[n]), array_fill(NULL::integer, ARRAY[n]),
                                            array_fill(NULL::integer, ARRAY[n]), array_fill(NULL::text, ARRAY[n]),
                                            array_fill(NULL::uuid, ARRAY[n]), true, false) LOOP
        IF g.error_code IS NOT NULL THEN
            RAISE EXCEPTION 'the run queue disagrees with the log: queued job % cannot start (%)', g.job_id,
                            g.error_message USING ERRCODE = 'XX000', HINT = 'vjm projections verify lists them';
        END IF;
        RETURN NEXT ROW(g.position, g.xact_id, g.job_id, g.version, g.type, g.from_state, g.to_state, g.attempt,
                        g.attempts_left, worker, g.actor, g.user_id, g.team_id, g.occurred_at, g.prev_hash,
                        g.hash)::vjm.job_events;
    END LOOP;
END
$$;

-- Many creates in one statement (a bulk import), all or nothing: the payloads as one JSON
-- array, and back only what the database decided (a create's version, type, states and
-- attempt are constants). At most 100,000 per call.
CREATE FUNCTION vjm.append_create_batch(
    p_job_ids uuid[], p_data jsonb, p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS TABLE ("position" bigint, xact_id xid8, job_id uuid, attempts_left smallint, actor text,
                 occurred_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp ROWS 10000 AS $$
DECLARE
    n constant integer := coalesce(cardinality(p_job_ids), 0);
BEGIN
    IF n > 100000 THEN
        RAISE EXCEPTION 'at most 100000 creates per call, got %', n USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT g.position, g.xact_id, g.job_id, g.attempts_left, g.actor, g.occurred_at
      FROM vjm.guard_append(p_job_ids, array_fill('create'::text, ARRAY[n]), p_data, p_actors,
                            array_fill(NULL::integer, ARRAY[n]), array_fill(NULL::integer, ARRAY[n]),
                            p_user_ids, p_team_ids, true, true) g;
END
$$;

-- vjm.append_create_batch for SQL callers: the payloads as jsonb[], the stored rows back.
CREATE FUNCTION vjm.append_creates(
    p_job_ids uuid[], p_data jsonb[], p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS SETOF vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n constant integer := coalesce(cardinality(p_job_ids), 0);
BEGIN
    IF n > 100000 THEN
        RAISE EXCEPTION 'at most 100000 creates per call, got %', n USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT g.position, g.xact_id, g.job_id, g.version, g.type, g.from_state, g.to_state, g.attempt, g.attempts_left,
           p_data[g.item], g.actor, g.user_id, g.team_id, g.occurred_at, g.prev_hash, g.hash
      FROM vjm.guard_append(p_job_ids, array_fill('create'::text, ARRAY[n]), coalesce(to_jsonb(p_data), '[]'), p_actors,
                            array_fill(NULL::integer, ARRAY[n]), array_fill(NULL::integer, ARRAY[n]),
                            p_user_ids, p_team_ids, true, true) g;
END
$$;
