-- The run queue: which jobs are queued right now, kept in the append transaction.
--
-- Claims used to read the projection (vjm.jobs) for candidates. The projection is
-- a few milliseconds behind the log, so a job started a moment ago still looked
-- queued: every concurrent claimer locked it, failed the version guard in a
-- subtransaction and moved on, and a claimer that found nothing waited for the
-- projector. Claims now read vjm.job_queue, which the append functions keep exact
-- in the same transaction as the event: a job is in it exactly while its head
-- event says `queued`. It is part of the write model, like the head itself (the
-- projection stays the read model), so claims never depend on the projector.
--
-- Lock order: a writer that can take a job out of `queued` (start, cancel, delete)
-- deletes its queue row BEFORE it reads the head and inserts the event, and a
-- claimer locks the row (FOR UPDATE SKIP LOCKED) before it appends. So a cancel
-- racing a claim on the same job waits for the claim, then sees the job
-- processing, instead of the two deadlocking on the event index.
--
-- append_event is also split into a head lookup, a transition lookup and an
-- INSERT ... VALUES: the one big INSERT ... WITH head, next ... JOIN transitions
-- statement cost 5-10 us more per append to start up (bench/README.md, W1).

SET LOCAL ROLE vjm_owner;  -- objects are owned by vjm_owner from birth (see 003_roles.sql)

CREATE TABLE vjm.job_queue (
    job_id          uuid        PRIMARY KEY,
    created_at      timestamptz NOT NULL,  -- the job's create event: claims take the oldest job first
    platform_target text
);

CREATE INDEX job_queue_order ON vjm.job_queue (created_at, job_id);

-- Only the append and claim functions (SECURITY DEFINER, run as the owner) write it;
-- admins and the projector's verify read it (vjm projections verify checks it against the log).
GRANT SELECT ON vjm.job_queue TO vjm_admin, vjm_projector;
ALTER TABLE vjm.job_queue ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON vjm.job_queue TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.job_queue FOR SELECT TO vjm_admin, vjm_projector USING (true);

-- The platform a job targets now: its create event, or the latest metadata change of it.
CREATE FUNCTION vjm.job_platform(p_job_id uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.data ->> 'platform_target' FROM vjm.job_events e
     WHERE e.job_id = p_job_id AND e.type IN ('create', 'update_metadata') AND e.data ? 'platform_target'
     ORDER BY e.version DESC LIMIT 1
$$;
REVOKE ALL ON FUNCTION vjm.job_platform(uuid) FROM PUBLIC;

-- Backfill: every job whose head is queued. The SHARE lock holds appends until this commits.
LOCK TABLE vjm.job_events IN SHARE MODE;
INSERT INTO vjm.job_queue (job_id, created_at, platform_target)
SELECT h.job_id, c.occurred_at, vjm.job_platform(h.job_id)
  FROM (SELECT DISTINCT ON (e.job_id) e.job_id, e.to_state FROM vjm.job_events e
         ORDER BY e.job_id, e.version DESC) h
  JOIN vjm.job_events c ON c.job_id = h.job_id AND c.version = 1
 WHERE h.to_state = 'queued';

-- The transition table as an expression: vjm.next_state(trigger, from_state, attempts_left)
-- is the state the trigger leads to, or NULL when it is not allowed. Generated from
-- vjm.transitions (which stays the one table, compared with the Python machine by a
-- test), as a CASE that plpgsql evaluates in a fraction of a microsecond; the lookup
-- query it replaces in append_event cost 3 us per append.
DO $$
DECLARE
    cases text;
BEGIN
    SELECT string_agg(format('WHEN trigger = %L AND from_state = %L%s THEN %L', t.trigger, t.from_state,
                             CASE t.guard WHEN 'has_attempts_left' THEN ' AND attempts_left > 0'
                                          WHEN 'attempts_exhausted' THEN ' AND attempts_left = 0'
                                          ELSE '' END, t.to_state),
                      ' ' ORDER BY t.trigger, t.from_state, t.guard)
      INTO cases FROM vjm.transitions t;
    EXECUTE format('CREATE FUNCTION vjm.next_state(trigger text, from_state text, attempts_left smallint) '
                   'RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT CASE %s END $f$', cases);
END
$$;

CREATE OR REPLACE FUNCTION vjm.append_event(
    p_job_id uuid, p_type text, p_data jsonb DEFAULT '{}', p_actor text DEFAULT NULL,
    p_expected_version integer DEFAULT NULL, p_attempt integer DEFAULT NULL,
    p_user_id text DEFAULT NULL, p_team_id uuid DEFAULT NULL
) RETURNS vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ev vjm.job_events;
    head vjm.job_events;
    next_state text;
    at timestamptz := clock_timestamp();
    who text := CASE WHEN vjm.may_fire('start') THEN coalesce(p_actor, vjm.current_user_id(), session_user) ELSE vjm.current_user_id() END;  -- only trusted callers name the actor; end users are recorded as their verified identity
    budget smallint;
    created timestamptz;
BEGIN
    IF jsonb_typeof(p_data) IS DISTINCT FROM 'object' OR length(who) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'data must be a JSON object and actor 1-200 characters' USING ERRCODE = '22023';
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
        INSERT INTO vjm.job_queue (job_id, created_at, platform_target)
        VALUES (p_job_id, at, p_data ->> 'platform_target');
    ELSE
        IF p_type IN ('start', 'cancel', 'delete') THEN
            -- Out of the queue first (see the lock order above); a refusal below rolls it back.
            DELETE FROM vjm.job_queue q WHERE q.job_id = p_job_id;
        END IF;
        SELECT e.* INTO head FROM vjm.job_events e WHERE e.job_id = p_job_id ORDER BY e.version DESC LIMIT 1;
        next_state := vjm.next_state(p_type, head.to_state, head.attempts_left);
        IF next_state IS NULL
           OR (p_expected_version IS NOT NULL AND head.version <> p_expected_version)
           OR (p_attempt IS NOT NULL AND head.attempt <> p_attempt
               AND p_type IN ('progress', 'complete', 'fail', 'time_out'))
           OR NOT (vjm.may_fire(p_type) AND vjm.can_see_job(head.user_id, head.team_id)) THEN
            PERFORM vjm.raise_refusal(p_job_id, p_type, p_expected_version, p_attempt);
        END IF;
        IF next_state = 'queued' AND head.to_state <> 'queued' THEN
            -- Back into the queue (retry, time_out), in the place its creation gave it.
            -- A retry also grants a fresh attempt budget: max_attempts from the create event.
            SELECT c.occurred_at, coalesce((c.data ->> 'max_attempts')::smallint, 3) INTO created, budget
              FROM vjm.job_events c WHERE c.job_id = p_job_id AND c.version = 1;
            INSERT INTO vjm.job_queue (job_id, created_at, platform_target)
            VALUES (p_job_id, created, vjm.job_platform(p_job_id));
            IF p_type <> 'retry' THEN
                budget := NULL;
            END IF;
        ELSIF next_state = 'queued' AND p_data ? 'platform_target' THEN
            UPDATE vjm.job_queue q SET platform_target = p_data ->> 'platform_target' WHERE q.job_id = p_job_id;
        END IF;
        INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                    data, actor, user_id, team_id, occurred_at, prev_hash, hash)
        VALUES (p_job_id, head.version + 1, p_type, head.to_state, next_state,
                head.attempt + (p_type = 'start')::int,
                CASE WHEN p_type = 'start' THEN head.attempts_left - 1 ELSE coalesce(budget, head.attempts_left) END,
                p_data, who, head.user_id, head.team_id, at, head.hash,
                vjm.event_hash(head.hash, p_job_id, head.version + 1, p_type, head.to_state, next_state,
                               head.attempt + (p_type = 'start')::int, p_data, who, head.user_id, head.team_id, at))
        RETURNING * INTO ev;
    END IF;
    -- The doorbell: the event's position and nothing else (DESIGN: doorbell only; the
    -- projector reads the log, and nobody listening learns whose job moved). Delivered
    -- at commit, dropped on rollback. Every notifying commit queues behind the one
    -- before it for the notification queue, so the payload is kept tiny, and the batch
    -- functions (claim_jobs, append_events) silence it for their items and ring once per
    -- statement. (A session that sets vjm.quiet_doorbell itself only delays its own
    -- projection until the projector's next poll.)
    IF current_setting('vjm.quiet_doorbell', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('vjm_events', '{"position":' || ev.position || '}');
    END IF;
    RETURN ev;
END
$$;

-- Bulk creates enter the queue in the same statement as their events.
CREATE OR REPLACE FUNCTION vjm.append_creates(
    p_job_ids uuid[], p_data jsonb[], p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS SETOF vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
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
    ), created AS (
        INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                    data, actor, user_id, team_id, occurred_at, prev_hash, hash)
        SELECT i.job_id, 1, 'create', NULL, 'queued', 0, coalesce((i.data ->> 'max_attempts')::smallint, 3),
               i.data, i.who, i.user_id, i.team_id, i.at, NULL,
               vjm.event_hash(NULL, i.job_id, 1, 'create', NULL, 'queued', 0, i.data, i.who, i.user_id, i.team_id, i.at)
          FROM input i
        RETURNING *
    ), queued AS (
        INSERT INTO vjm.job_queue (job_id, created_at, platform_target)
        SELECT c.job_id, c.occurred_at, c.data ->> 'platform_target' FROM created c
    )
    SELECT * FROM created;
    GET DIAGNOSTICS created = ROW_COUNT;
    PERFORM pg_notify('vjm_events', json_build_object('type', 'create', 'count', created)::text);
END
$$;

-- Claims: the oldest queued jobs, locked with SKIP LOCKED so that concurrent claimers
-- never meet, taken out of the queue and started in one INSERT: the columns are the
-- ones vjm.append_event computes for a start (the same next_state, hash chain, RLS
-- insert check and CHECK constraint apply), set-based, because a claim of ten jobs
-- spent 90 us per job in ten append_event calls. The locked queue row guarantees the
-- job is queued (every writer that takes a job out of the queue deletes its row
-- first), so a job that cannot start means the queue and the log disagree: that
-- raises, and `vjm projections verify` names the job. Returns the claimed jobs' whole
-- streams (create ... start), so that the caller builds each job without another
-- round trip and without waiting for the projection.
DROP FUNCTION vjm.claim_jobs(text, integer, text);
CREATE FUNCTION vjm.claim_jobs(p_worker_id text, p_limit integer, p_platform text DEFAULT NULL)
RETURNS SETOF vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    claimed uuid[];
    started integer;
    at timestamptz := clock_timestamp();
    worker jsonb := jsonb_build_object('worker_id', p_worker_id);
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
    END IF;
    IF length(p_worker_id) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'worker_id must be 1-200 characters' USING ERRCODE = '22023';
    END IF;
    IF NOT vjm.may_fire('start') THEN
        RAISE EXCEPTION 'not allowed to start jobs' USING ERRCODE = '42501';
    END IF;
    SELECT array_agg(q.job_id) INTO claimed FROM (
        SELECT q.job_id FROM vjm.job_queue q
         WHERE p_platform IS NULL OR q.platform_target = p_platform
         ORDER BY q.created_at, q.job_id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED) q;
    IF claimed IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM vjm.job_queue q WHERE q.job_id = ANY (claimed);
    INSERT INTO vjm.job_events (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                data, actor, user_id, team_id, occurred_at, prev_hash, hash)
    SELECT h.job_id, h.version + 1, 'start', h.to_state, n.to_state, h.attempt + 1, h.attempts_left - 1,
           worker, p_worker_id, h.user_id, h.team_id, at, h.hash,
           vjm.event_hash(h.hash, h.job_id, h.version + 1, 'start', h.to_state, n.to_state, h.attempt + 1,
                          worker, p_worker_id, h.user_id, h.team_id, at)
      FROM unnest(claimed) AS c(job_id)
     CROSS JOIN LATERAL (SELECT e.job_id, e.version, e.to_state, e.attempt, e.attempts_left, e.user_id, e.team_id,
                                e.hash
                           FROM vjm.job_events e WHERE e.job_id = c.job_id ORDER BY e.version DESC LIMIT 1) h
     CROSS JOIN LATERAL (SELECT vjm.next_state('start', h.to_state, h.attempts_left) AS to_state) n
     WHERE n.to_state IS NOT NULL AND vjm.can_see_job(h.user_id, h.team_id);
    GET DIAGNOSTICS started = ROW_COUNT;
    IF started <> cardinality(claimed) THEN
        RAISE EXCEPTION 'the run queue disagrees with the log: % queued jobs cannot start', cardinality(claimed) - started
            USING ERRCODE = 'XX000', HINT = 'vjm projections verify lists them';
    END IF;
    PERFORM pg_notify('vjm_events', json_build_object('type', 'start', 'count', started)::text);
    -- Each stream by its own index scan: `job_id = ANY (claimed)` was planned once, as a
    -- sequential scan, while the log was small, and the cached plan stayed one as it grew.
    RETURN QUERY SELECT e.* FROM unnest(claimed) AS c(job_id)
     CROSS JOIN LATERAL (SELECT s.* FROM vjm.job_events s WHERE s.job_id = c.job_id
                          ORDER BY s.version LIMIT 100000) e;
END
$$;

REVOKE ALL ON FUNCTION vjm.claim_jobs(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vjm.claim_jobs(text, integer, text) TO vjm_processor, vjm_admin;

-- The old candidate index on the projection is no longer used by anything.
DROP INDEX vjm.jobs_queued;
