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
    PERFORM set_config('vjm.quiet_doorbell', 'on', true);  -- one doorbell for the batch (see append_event)
    FOR i IN 1 .. n LOOP
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
      FROM vjm.job_events e
     WHERE e.job_id = ANY (applied)
     ORDER BY e.job_id, e.version;
END
$$;

REVOKE ALL ON FUNCTION vjm.append_events(uuid[], text[], jsonb[], text[], integer[], integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vjm.append_events(uuid[], text[], jsonb[], text[], integer[], integer[])
    TO vjm_authenticated, vjm_processor, vjm_admin;
