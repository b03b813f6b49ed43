-- The processor API: claim queued jobs atomically.

SET LOCAL ROLE vjm_owner;  -- objects are owned by vjm_owner from birth (see 003_roles.sql)

-- Claiming reads the projection (vjm.jobs) for candidates, locks them with
-- SKIP LOCKED so that concurrent claimers never pick the same row, and appends a
-- `start` for each through vjm.append_event with the version it saw as the
-- expected version. The projection can lag the log by a few milliseconds: a row
-- that still says `queued` for a job someone already started fails the version
-- guard and is skipped, so a job is never handed out twice.
CREATE INDEX jobs_queued ON vjm.jobs (created_at, job_id) WHERE status = 'queued';

CREATE FUNCTION vjm.claim_jobs(p_worker_id text, p_limit integer, p_platform text DEFAULT NULL)
RETURNS TABLE (job_id uuid, attempt integer, version integer, "position" bigint, xact_id xid8)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    candidate record;
    started vjm.job_events;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
    END IF;
    IF NOT vjm.may_fire('start') THEN
        RAISE EXCEPTION 'not allowed to start jobs' USING ERRCODE = '42501';
    END IF;
    FOR candidate IN
        SELECT j.job_id, j.version FROM vjm.jobs j
         WHERE j.status = 'queued' AND (p_platform IS NULL OR j.platform_target = p_platform)
         ORDER BY j.created_at, j.job_id
         LIMIT p_limit
         FOR UPDATE SKIP LOCKED
    LOOP
        BEGIN
            started := vjm.append_event(candidate.job_id, 'start',
                                        jsonb_build_object('worker_id', p_worker_id), p_worker_id,
                                        candidate.version);
            job_id := started.job_id;
            attempt := started.attempt;
            version := started.version;
            "position" := started.position;
            xact_id := started.xact_id;
            RETURN NEXT;
        EXCEPTION WHEN SQLSTATE 'VJ409' OR SQLSTATE 'VJ422' OR unique_violation THEN
            NULL;  -- the projection was behind: someone else started it first
        END;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION vjm.claim_jobs(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vjm.claim_jobs(text, integer, text) TO vjm_processor, vjm_admin;
