-- Many transitions in one statement, each judged on its own.
--
-- Processors that finish many short jobs report them together, and bulk status
-- changes touch many jobs: one round trip and one commit for a batch instead of one
-- per job (every notifying commit waits for the one before it to reach the disk, so
-- commits, not statements, bound the write rate). Each transition goes through
-- vjm.append_event, the one guard, inside its own subtransaction: a refused job
-- (stale attempt, wrong state, someone else's job) is reported and the others still
-- apply. A subtransaction that writes takes a subtransaction id, and a transaction
-- with more than 64 of them slows every snapshot in the cluster, so a call takes at
-- most 50 transitions; callers send larger batches as several calls.
--
-- Returns, for each refused item, one row with its 1-based `item` and the error
-- (SQLSTATE, message, detail, hint, as vjm.append_event raised it); and, for each job
-- that took an event, its whole stream (item NULL), so the caller builds every
-- job without another round trip.

SET LOCAL ROLE vjm_owner;  -- objects are owned by vjm_owner from birth (see 003_roles.sql)

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
DECLARE
    n integer := coalesce(cardinality(p_job_ids), 0);
    applied uuid[] := '{}';
    now_at timestamptz := clock_timestamp();
    code text;
    message text;
    detail text;
    hint text;
BEGIN
    IF n > 50 THEN
        RAISE EXCEPTION 'at most 50 transitions per call, got %', n USING ERRCODE = '22023';
    END IF;
    IF coalesce(cardinality(p_types), 0) <> n OR coalesce(cardinality(p_data), 0) <> n
       OR coalesce(cardinality(p_actors), 0) <> n OR coalesce(cardinality(p_attempts), 0) <> n
       OR coalesce(cardinality(p_expected_versions), 0) <> n THEN
        RAISE EXCEPTION 'every argument array must have % elements', n USING ERRCODE = '22023';
    END IF;
    -- The common case, a processor reporting a batch (progress, complete, fail; each job
    -- once): one INSERT for all of them, with the columns and checks of append_event
    -- (next_state, expected version, attempt fence, rights, payload). Items it does not
    -- take go through append_event one by one below, which applies them or says why
    -- not; a race with another writer (unique violation) sends every item there.
    IF n > 0 AND p_types <@ ARRAY['progress', 'complete', 'fail']
       AND (SELECT count(DISTINCT u.id) FROM unnest(p_job_ids) AS u(id)) = n THEN
        BEGIN
            WITH input AS (
                SELECT i.* FROM unnest(p_job_ids, p_types, p_data, p_actors, p_attempts, p_expected_versions)
                         AS i(j_id, j_type, j_data, j_actor, j_attempt, j_expected)
            ), ready AS (
                SELECT i.*, h.version AS h_version, h.to_state AS h_state, h.attempt AS h_attempt,
                       h.attempts_left AS h_left, h.user_id AS h_user, h.team_id AS h_team, h.hash AS h_hash,
                       vjm.next_state(i.j_type, h.to_state, h.attempts_left) AS h_next,
                       CASE WHEN vjm.may_fire('start') THEN coalesce(i.j_actor, vjm.current_user_id(), session_user)
                            ELSE vjm.current_user_id() END AS who
                  FROM input i
                 CROSS JOIN LATERAL (SELECT e.version, e.to_state, e.attempt, e.attempts_left, e.user_id, e.team_id,
                                            e.hash
                                       FROM vjm.job_events e WHERE e.job_id = i.j_id
                                      ORDER BY e.version DESC LIMIT 1) h
            ), inserted AS (
                INSERT INTO vjm.job_events AS ins (job_id, version, type, from_state, to_state, attempt, attempts_left,
                                                   data, actor, user_id, team_id, occurred_at, prev_hash, hash)
                SELECT r.j_id, r.h_version + 1, r.j_type, r.h_state, r.h_next, r.h_attempt, r.h_left, r.j_data, r.who,
                       r.h_user, r.h_team, now_at, r.h_hash,
                       vjm.event_hash(r.h_hash, r.j_id, r.h_version + 1, r.j_type, r.h_state, r.h_next, r.h_attempt,
                                      r.j_data, r.who, r.h_user, r.h_team, now_at)
                  FROM ready r
                 WHERE r.h_next IS NOT NULL
                   AND (r.j_expected IS NULL OR r.h_version = r.j_expected)
                   AND (r.j_attempt IS NULL OR r.h_attempt = r.j_attempt)
                   AND jsonb_typeof(r.j_data) = 'object' AND length(r.who) BETWEEN 1 AND 200
                   AND vjm.may_fire(r.j_type) AND vjm.can_see_job(r.h_user, r.h_team)
                RETURNING ins.job_id
            )
            SELECT coalesce(array_agg(x.job_id), '{}') INTO applied FROM inserted x;
        EXCEPTION WHEN unique_violation THEN
            applied := '{}';
        END;
    END IF;
    PERFORM set_config('vjm.quiet_doorbell', 'on', true);  -- one doorbell for the batch (see append_event)
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN p_job_ids[i] = ANY (applied);
        BEGIN
            PERFORM vjm.append_event(p_job_ids[i], p_types[i], p_data[i], p_actors[i], p_expected_versions[i],
                                     p_attempts[i]);
            applied := applied || p_job_ids[i];
        EXCEPTION WHEN SQLSTATE 'VJ404' OR SQLSTATE 'VJ409' OR SQLSTATE 'VJ422' OR SQLSTATE 'VJ423'
                    OR insufficient_privilege OR unique_violation OR invalid_parameter_value
                    OR check_violation OR deadlock_detected THEN
            GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                                    detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
            RETURN QUERY SELECT i, code, message, nullif(detail, ''), nullif(hint, ''),
                                NULL::bigint, NULL::xid8, p_job_ids[i], NULL::integer, NULL::text, NULL::text,
                                NULL::text, NULL::integer, NULL::smallint, NULL::text, NULL::text, NULL::uuid,
                                NULL::timestamptz, NULL::jsonb;
        END;
    END LOOP;
    PERFORM set_config('vjm.quiet_doorbell', 'off', true);
    IF cardinality(applied) > 0 THEN
        PERFORM pg_notify('vjm_events', json_build_object('count', cardinality(applied))::text);
    END IF;
    RETURN QUERY
    SELECT NULL::integer, NULL::text, NULL::text, NULL::text, NULL::text,
           e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt,
           e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at, e.data
      FROM unnest(applied) AS a(job_id)
     CROSS JOIN LATERAL (SELECT s.* FROM vjm.job_events s WHERE s.job_id = a.job_id
                          ORDER BY s.version LIMIT 100000) e;  -- an index scan per job, whatever the size (013)
END
$$;

REVOKE ALL ON FUNCTION vjm.append_events(uuid[], text[], jsonb[], text[], integer[], integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vjm.append_events(uuid[], text[], jsonb[], text[], integer[], integer[])
    TO vjm_authenticated, vjm_processor, vjm_admin;
