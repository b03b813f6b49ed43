-- vjm_entry.append_event: an end user's create in one round trip (sql/schema/066_user_entry.sql, and its
-- grants in 080_grants.sql). The migrating login creates the schema (the owner role may not create one).
CREATE SCHEMA IF NOT EXISTS vjm_entry AUTHORIZATION vjm_owner;
SET LOCAL ROLE vjm_owner;

CREATE FUNCTION vjm_entry.append_event(
    p_token text, p_lock_timeout_ms integer, p_job_id uuid, p_type text, p_data jsonb, p_actor text,
    p_expected_version integer, p_attempt integer, p_user_id text, p_team_id uuid
) RETURNS vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM pg_catalog.set_config('role', 'vjm_authenticated', true),
            pg_catalog.set_config('request.jwt', p_token, true);
    IF p_lock_timeout_ms IS NOT NULL THEN
        PERFORM pg_catalog.set_config('lock_timeout', p_lock_timeout_ms::text || 'ms', true);
    END IF;
    RETURN vjm.append_event(p_job_id, p_type, p_data, p_actor, p_expected_version, p_attempt, p_user_id,
                            p_team_id);
END
$$;

GRANT USAGE ON SCHEMA vjm_entry TO vjm_app;
GRANT EXECUTE ON FUNCTION vjm_entry.append_event(text, integer, uuid, text, jsonb, text, integer, integer, text, uuid)
    TO vjm_app;
