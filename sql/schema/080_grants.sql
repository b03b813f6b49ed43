-- Who may use what. Row Level Security (row_level_security.sql) then narrows every
-- SELECT/INSERT/UPDATE/DELETE to the rows each role may touch; without a grant here a role
-- cannot even try. Nothing is granted to PUBLIC.
SET LOCAL ROLE vjm_owner;

GRANT USAGE ON SCHEMA vjm TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;
-- The end users' login reaches vjm_entry only (066_user_entry.sql): invoker functions that take the
-- role it may take anyway and name the caller's token. Nothing in vjm itself.
GRANT USAGE ON SCHEMA vjm_entry TO vjm_app;
GRANT EXECUTE ON FUNCTION vjm_entry.append_event(text, integer, uuid, text, jsonb, text, integer, integer, text, uuid),
    vjm_entry.append_create_batch(text, uuid[], jsonb, text[], text[], uuid[])
    TO vjm_app;

-- The rules and the helpers that policies and queries evaluate as the caller.
GRANT SELECT ON vjm.transitions, vjm.trigger_rules, vjm.job_defaults, vjm.payload_chars, vjm.payload_rules,
    vjm.payload_shapes
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;
GRANT EXECUTE ON FUNCTION
    vjm.next_state(text, text, smallint), vjm.fired_by_processor(text), vjm.fired_by_user(text), vjm.fenced(text),
    vjm.worker_report(text),    vjm.default_max_attempts(),
    vjm.moves_in_queue(text), vjm.event_hash(bytea, uuid, integer, text, text, text, integer, jsonb, text, text, uuid,
                                              timestamptz),
    vjm.projection_horizon(), vjm.current_user_id(), vjm.caller_role(), vjm.caller_kind(),
    vjm.caller_kind_by_membership(), vjm.may_create(text, uuid, text, uuid[]), vjm.payload_ok(text, jsonb),
    vjm.payload_strings_ok(jsonb, integer, integer, integer, text),
    vjm.may_fire_as_caller(text), vjm.can_see_job_as_caller(text, uuid, text, uuid[]),
    vjm.may_append_as_caller(text, text, uuid, jsonb, text, uuid[]), vjm.may_fire(text), vjm.can_see_job(text, uuid, text, uuid[]),
    vjm.may_append(text, text, uuid, jsonb, text, uuid[]), vjm.doorbell_lock_class(),
    vjm.jobs_before(uuid[], integer[]), vjm.epoch_minute(timestamptz)
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;
-- Only a user's own memberships; services never ask.
GRANT EXECUTE ON FUNCTION vjm.current_team_ids() TO vjm_authenticated, vjm_admin;

-- The log: readable through RLS; written only through the write API.
GRANT SELECT ON vjm.job_events TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.append_event(uuid, text, jsonb, text, integer, integer, text, uuid),
    vjm.append_events(uuid[], text[], jsonb[], text[], integer[], integer[])
    TO vjm_authenticated, vjm_processor, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.append_create_batch(uuid[], jsonb, text[], text[], uuid[]),
    vjm.append_creates(uuid[], jsonb[], text[], text[], uuid[])
    TO vjm_authenticated, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.claim_jobs(text, integer, text[], double precision) TO vjm_processor, vjm_admin;
-- Leases (workers.sql): written only by these functions; processors (the stuck detector's
-- idle scan leaves leased jobs to their lease) and admins read them.
GRANT EXECUTE ON FUNCTION vjm.claim_jobs_leased(text, integer, text[], double precision),
    vjm.renew_leases(text, uuid[], integer[], double precision[]), vjm.expire_leases(integer, text),
    vjm.next_claimable_in(text[])
    TO vjm_processor, vjm_admin;
GRANT SELECT ON vjm.leases TO vjm_processor, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.worker_beat(text, text, integer, integer, integer, text[], text, double precision, boolean)
    TO vjm_processor, vjm_admin;
GRANT SELECT ON vjm.workers, vjm.worker_status TO vjm_processor, vjm_admin;

-- The run queue: written by the guard only; admins and the projector's verify read it.
GRANT SELECT ON vjm.run_queue, vjm.job_queue TO vjm_admin, vjm_projector;
-- Claim policy (063_claims.sql): processors and admins read it; admins change it, through the
-- functions, which record every change.
GRANT SELECT ON vjm.claim_settings, vjm.claim_caps, vjm.claim_pauses, vjm.queue_settings_history
    TO vjm_processor, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.pause_claims(text, text, text), vjm.resume_claims(text, text, text),
    vjm.set_claim_cap(text, text, integer, text, text), vjm.set_fair_share(text, text, text)
    TO vjm_admin;
-- Idempotency keys (062_idempotency.sql): written by the guard only; admins and verify read them.
-- The window: everyone may read it; only the owner changes it.
GRANT SELECT ON vjm.idempotency_keys TO vjm_admin, vjm_projector;
GRANT SELECT ON vjm.idempotency_settings TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;

-- The doorbell: the projector and admins.
GRANT EXECUTE ON FUNCTION vjm.arm_doorbell(xid8, bigint), vjm.hold_doorbell(), vjm.release_doorbell(),
    vjm.doorbell_holders() TO vjm_projector, vjm_admin;
-- The projector's leadership: only the projector may take or renew a lease (the functions are
-- SECURITY INVOKER: the table's UPDATE privilege is what counts); admins may see who holds it.
-- Its candidates (the leader and the standbys) check in through vjm.try_lead_projector.
GRANT SELECT, INSERT, UPDATE ON vjm.projector_leases TO vjm_projector;
GRANT SELECT ON vjm.projector_leases TO vjm_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON vjm.projector_candidates TO vjm_projector;
GRANT SELECT ON vjm.projector_candidates TO vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.try_lead_projector(text, interval, text), vjm.stop_leading_projector(text),
    vjm.check_in_projector(text, text) TO vjm_projector;
GRANT EXECUTE ON FUNCTION vjm.projector_lease_live(vjm.projector_leases), vjm.backend_live(integer, oid, timestamptz)
    TO vjm_projector, vjm_admin;

-- Read models: the projector writes them; users read their rows; processors read jobs (the
-- stuck detector scans vjm.jobs) and the change feed (a service token's event stream);
-- admins read everything.
GRANT SELECT, INSERT, UPDATE, DELETE ON vjm.jobs, vjm.job_stats, vjm.job_stats_daily, vjm.job_stats_platform,
    vjm.job_changes, vjm.projection_checkpoints, vjm.transition_counts TO vjm_projector;
GRANT SELECT ON vjm.jobs, vjm.job_stats, vjm.job_stats_daily, vjm.job_stats_platform, vjm.job_changes
    TO vjm_authenticated;
GRANT SELECT ON vjm.jobs, vjm.job_changes, vjm.projection_checkpoints, vjm.transition_counts TO vjm_processor;
GRANT SELECT ON vjm.jobs, vjm.job_stats, vjm.job_stats_daily, vjm.job_stats_platform, vjm.job_changes,
    vjm.projection_checkpoints, vjm.schema_migrations, vjm.transition_counts TO vjm_admin;
-- An admin voids an event the projector cannot apply (the guard refuses everyone else too).
GRANT EXECUTE ON FUNCTION vjm.void_event(bigint, text) TO vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.job_changes_visible(bigint[]) TO vjm_authenticated;

-- Teams: users read the teams they are in (RLS decides), admins all of them. Nobody may
-- write these tables, so no tenant can LOCK them or lock their rows: users and admins
-- change teams through the definer functions, which check the caller
-- (teams_and_rights.sql). A run-time role holds no INSERT, UPDATE, DELETE, TRUNCATE,
-- REFERENCES or TRIGGER on any table, the projector's read models aside
-- (security/test_security_teams_and_oracles.py).
GRANT SELECT ON vjm.teams, vjm.team_members TO vjm_authenticated, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.create_team(text, text), vjm.add_team_member(uuid, text, text),
    vjm.remove_team_member(uuid, text), vjm.delete_team(uuid)
    TO vjm_authenticated, vjm_admin;
