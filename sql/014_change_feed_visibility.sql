-- Which change-feed rows each of several end users may read, in one statement.
--
-- The HTTP API reads each new page of vjm.job_changes once (as a service role) and fans
-- it out to every open event stream of the process (listeners/feed_hub.py). Which user
-- may receive which row is not re-implemented anywhere: for each viewer, this function
-- sets that viewer's identity (request.jwt.claims, transaction-local, as acting_as does)
-- and reads the given rows of vjm.job_changes under the caller's own role, which must be
-- vjm_authenticated. So the row-level security policy user_read on vjm.job_changes
-- (004_row_level_security.sql), with vjm.current_user_id() and vjm.current_team_ids()
-- evaluated afresh for each viewer, is what decides; a change to that policy applies here
-- too, and a user removed from a team stops seeing its rows at the next call.
--
-- SECURITY INVOKER on purpose: as the owner, RLS would show every row to every viewer.
-- A caller that is not an end user (a service role sees every row, whoever the viewer)
-- is refused rather than given a wrong answer. It grants nothing new: an end user's
-- session could set request.jwt.claims itself; identity is set by the application.
-- The identity the caller had is restored before returning.

SET LOCAL ROLE vjm_owner;  -- objects are owned by vjm_owner from birth (see 003_roles.sql)

CREATE FUNCTION vjm.job_changes_visible(p_seqs bigint[], p_viewers text[])
RETURNS TABLE (seq bigint, viewer text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    saved constant text := coalesce(current_setting('request.jwt.claims', true), '');
    v text;
BEGIN
    IF vjm.caller_kind() IS DISTINCT FROM 'user' THEN
        RAISE EXCEPTION 'vjm.job_changes_visible runs as vjm_authenticated: row level security decides'
            USING ERRCODE = '42501';
    END IF;
    FOREACH v IN ARRAY coalesce(p_viewers, '{}') LOOP
        CONTINUE WHEN v IS NULL;
        PERFORM set_config('request.jwt.claims', jsonb_build_object('sub', v, 'role', 'authenticated')::text, true);
        RETURN QUERY SELECT c.seq, v FROM vjm.job_changes c WHERE c.seq = ANY (p_seqs);
    END LOOP;
    PERFORM set_config('request.jwt.claims', saved, true);
END
$$;

REVOKE ALL ON FUNCTION vjm.job_changes_visible(bigint[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vjm.job_changes_visible(bigint[], text[]) TO vjm_authenticated;
