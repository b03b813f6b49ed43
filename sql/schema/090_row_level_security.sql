-- Row Level Security: who sees and changes which rows.
--
-- Every table in vjm has ENABLE and FORCE ROW LEVEL SECURITY: with FORCE the owner is
-- subject to policies too, so vjm_owner (as whom the SECURITY DEFINER write functions run)
-- gets explicit policies. Superusers and BYPASSRLS roles skip RLS; no vjm run-time role is
-- either (tests/integration/security/test_security_catalog.py). Identity is vjm.current_user_id(),
-- the role the caller's SET ROLE (vjm.caller_role()), both in teams_and_rights.sql.
--
-- The user predicate, written out in each policy: "mine, or one of my teams'". The identity
-- functions are wrapped in sub-selects so that they run once per statement (an InitPlan),
-- not once per row.
SET LOCAL ROLE vjm_owner;

-- Every table: ENABLE + FORCE. A table without a policy for a role shows it nothing.
ALTER TABLE vjm.schema_migrations      ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.transitions            ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_events             ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.jobs                   ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_stats              ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_stats_daily        ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_changes            ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.transition_counts      ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.projection_checkpoints ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_stats_platform     ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.run_queue              ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.leases                 ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.workers                ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.trigger_rules          ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.job_defaults           ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.payload_chars          ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.payload_rules          ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.payload_shapes         ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.teams                  ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.team_members           ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.projector_leases       ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.projector_candidates   ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.idempotency_keys       ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.idempotency_settings   ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.claim_settings         ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.claim_caps             ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.claim_pauses           ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.queue_settings_history ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- schema_migrations: the migrator (a superuser) bypasses RLS; the owner and admins read it.
CREATE POLICY owner_all ON vjm.schema_migrations TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.schema_migrations FOR SELECT TO vjm_admin USING (true);

-- The rule tables: reference data, readable by every run-time role.
CREATE POLICY owner_all ON vjm.transitions TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.transitions FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.trigger_rules TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.trigger_rules FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.job_defaults TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.job_defaults FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.payload_chars TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.payload_chars FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.payload_rules TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.payload_rules FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.payload_shapes TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.payload_shapes FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);

-- job_events: append-only (a trigger refuses UPDATE/DELETE/TRUNCATE even for the owner),
-- written only by the append functions, which run as the owner: it reads every head and
-- inserts, and the insert is checked once more (vjm.may_append: a user's creates). The caller's
-- teams decide only for a job in a team (vjm.may_create), so an event with no team does not read
-- them: vjm.current_team_ids() verifies the token once more (bench/README.md, "the HTTP path").
-- Both are sub-selects, so each is evaluated once per statement (when first needed), not per row:
-- the caller is the same for every row of one INSERT, and a batch of one user's creates verified
-- the token once for each row (77 of the 253 us per create, bench/README.md "the HTTP path").
CREATE POLICY owner_read ON vjm.job_events FOR SELECT TO vjm_owner USING (true);
CREATE POLICY owner_append ON vjm.job_events FOR INSERT TO vjm_owner
    WITH CHECK (vjm.may_append(type, user_id, team_id, data, (SELECT vjm.current_user_id()),
                               CASE WHEN team_id IS NULL THEN NULL ELSE (SELECT vjm.current_team_ids()) END));
CREATE POLICY user_read ON vjm.job_events FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY service_read ON vjm.job_events FOR SELECT TO vjm_processor, vjm_projector, vjm_admin USING (true);

-- jobs: the projector writes; users read theirs; processors (stuck detector) and admins read all.
CREATE POLICY owner_all ON vjm.jobs TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.jobs TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.jobs FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY service_read ON vjm.jobs FOR SELECT TO vjm_processor, vjm_admin USING (true);

-- job_stats and job_stats_daily: a user row (scope 'user') carries user_id, a team row team_id.
CREATE POLICY owner_all ON vjm.job_stats TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.job_stats TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_stats FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_stats FOR SELECT TO vjm_admin USING (true);

CREATE POLICY owner_all ON vjm.job_stats_daily TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.job_stats_daily TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_stats_daily FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_stats_daily FOR SELECT TO vjm_admin USING (true);

CREATE POLICY owner_all ON vjm.job_stats_platform TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.job_stats_platform TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_stats_platform FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_stats_platform FOR SELECT TO vjm_admin USING (true);

-- transition_counts: events by type, no tenant data; services read them (monitoring).
CREATE POLICY owner_all ON vjm.transition_counts TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.transition_counts TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.transition_counts FOR SELECT TO vjm_processor, vjm_admin USING (true);

-- job_changes: the dashboards' change feed, per job, with the job's owner and team; services
-- (a processor serving a service token's stream) read every row.
CREATE POLICY owner_all ON vjm.job_changes TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY processor_read ON vjm.job_changes FOR SELECT TO vjm_processor USING (true);
CREATE POLICY projector_all ON vjm.job_changes TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_changes FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_changes FOR SELECT TO vjm_admin USING (true);

-- run_queue: written by the guard (as the owner); admins and the projector's verify read it.
CREATE POLICY owner_all ON vjm.run_queue TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.run_queue FOR SELECT TO vjm_admin, vjm_projector USING (true);

-- The claim policy (063_claims.sql): written by its functions (as the owner); processors and admins read it.
CREATE POLICY owner_all ON vjm.claim_settings TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.claim_settings FOR SELECT TO vjm_processor, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.claim_caps TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.claim_caps FOR SELECT TO vjm_processor, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.claim_pauses TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.claim_pauses FOR SELECT TO vjm_processor, vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.queue_settings_history TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.queue_settings_history FOR SELECT TO vjm_processor, vjm_admin USING (true);

-- idempotency_keys: written by the guard (as the owner); admins and the projector's verify read it.
-- idempotency_settings: the owner changes the window; every run-time role may read it.
CREATE POLICY owner_all ON vjm.idempotency_keys TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.idempotency_keys FOR SELECT TO vjm_admin, vjm_projector USING (true);
CREATE POLICY owner_all ON vjm.idempotency_settings TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY everyone_read ON vjm.idempotency_settings FOR SELECT
    TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin USING (true);

-- leases: written by the worker functions (as the owner); processors and admins read them.
CREATE POLICY owner_all ON vjm.leases TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.leases FOR SELECT TO vjm_processor, vjm_admin USING (true);
-- workers: the registry, written by vjm.worker_beat (as the owner); processors and admins read it.
CREATE POLICY owner_all ON vjm.workers TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.workers FOR SELECT TO vjm_processor, vjm_admin USING (true);

-- projection_checkpoints: positions only, but they count every tenant's events: services only.
CREATE POLICY owner_all ON vjm.projection_checkpoints TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.projection_checkpoints TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY service_read ON vjm.projection_checkpoints FOR SELECT TO vjm_processor, vjm_admin USING (true);

-- projector_leases: who leads each projector; only the projector takes or renews a lease.
CREATE POLICY owner_all ON vjm.projector_leases TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.projector_leases TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.projector_leases FOR SELECT TO vjm_admin USING (true);
-- projector_candidates: the sessions that ask for a lease; the projector keeps them, admins read them.
CREATE POLICY owner_all ON vjm.projector_candidates TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.projector_candidates TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.projector_candidates FOR SELECT TO vjm_admin USING (true);

-- teams: members and the owner see a live team; admins see every team, deleted ones too.
-- Nobody but the owner writes them: run-time roles hold no write privilege on these
-- tables, and change them through vjm.create_team, vjm.add_team_member,
-- vjm.remove_team_member and vjm.delete_team (teams_and_rights.sql), which check the caller.
CREATE POLICY owner_all ON vjm.teams TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.teams FOR SELECT TO vjm_admin USING (true);
CREATE POLICY user_read ON vjm.teams FOR SELECT TO vjm_authenticated
    USING (deleted_at IS NULL AND (owner_id = (SELECT vjm.current_user_id())
                                   OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[])));

-- team_members: a user sees their own memberships and their teams' members (a deleted
-- team has none). The owner check reads vjm.teams under the caller's own policies.
CREATE POLICY owner_all ON vjm.team_members TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.team_members FOR SELECT TO vjm_admin USING (true);
CREATE POLICY user_read ON vjm.team_members FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[])
           OR team_id IN (SELECT t.team_id FROM vjm.teams t WHERE t.owner_id = (SELECT vjm.current_user_id())));
