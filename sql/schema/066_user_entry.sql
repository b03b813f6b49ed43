-- An end user's create in one round trip: the identity and the write in one statement.
--
-- An end user's request runs as vjm_authenticated with their signed token (store/identity.py
-- acting_as): BEGIN, set_config('role') and set_config('request.jwt'), the statement, COMMIT,
-- four round trips. vjm_entry.append_event does the same in one. Sent outside a transaction
-- block, the statement is its own transaction, and both settings (is_local => true) revert
-- when it ends, as acting_as's revert at COMMIT or ROLLBACK: a pooled connection carries no
-- identity into the next request (tests/integration/security/test_security_user_entry.py).
--
-- A schema of its own, because vjm_app, the end users' login, holds nothing by itself, not
-- even USAGE on vjm (test_security_catalog.py): a code path that forgets to take the role
-- fails closed. vjm_app may use this schema only. Its functions are SECURITY INVOKER: they run
-- with vjm_app's own rights and do only what vjm_app may already do in two statements, take
-- vjm_authenticated (PostgreSQL checks the membership) and name a token, which the guard
-- verifies (vjm.current_user_id()) exactly as before. Nothing here decides who the caller is
-- or what they may do; RLS, the grants and the guard are unchanged.
--
-- Creating a schema needs CREATE on the database, which the owner role lacks: the migrating
-- login creates it (its owner is vjm_owner), then the owner creates what is in it.
RESET ROLE;
CREATE SCHEMA IF NOT EXISTS vjm_entry AUTHORIZATION vjm_owner;
SET LOCAL ROLE vjm_owner;

-- vjm.append_event as the end user whose token is p_token (role vjm_authenticated), with lock
-- waits ending after p_lock_timeout_ms when given (a keyed create: IdempotencyKeyInUse, VJ425).
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

-- vjm.append_create_batch as the end user whose token is p_token, in one statement: a combined round
-- of one user's creates (store.write_combiner, the end users' combiner: only creates under one token
-- share a round). Every item is judged as the user's own create would be; the batch is all or nothing.
CREATE FUNCTION vjm_entry.append_create_batch(
    p_token text, p_job_ids uuid[], p_data jsonb, p_actors text[], p_user_ids text[], p_team_ids uuid[]
) RETURNS TABLE ("position" bigint, xact_id xid8, job_id uuid, attempts_left smallint, actor text,
                 occurred_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER ROWS 50 AS $$
BEGIN
    PERFORM pg_catalog.set_config('role', 'vjm_authenticated', true),
            pg_catalog.set_config('request.jwt', p_token, true);
    RETURN QUERY SELECT * FROM vjm.append_create_batch(p_job_ids, p_data, p_actors, p_user_ids, p_team_ids);
END
$$;
