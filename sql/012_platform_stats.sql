-- Per-platform counters per scope, kept by the projector next to vjm.job_stats.
--
-- The platform breakdown of get_job_stats used to be a GROUP BY over vjm.jobs at
-- read time (a HashAggregate over every job of the scope). These counters are
-- maintained incrementally in the same apply transaction as vjm.job_stats (the
-- fold emits per-(scope, scope_id, platform_target) deltas from a job's row before
-- and after a batch, so a job whose platform changes through update_metadata moves
-- between platforms), rebuilt and verified by replay, and checked against a
-- recount. A row whose total drops to 0 is deleted, so they equal a recount exactly.

SET LOCAL ROLE vjm_owner;  -- objects are owned by vjm_owner from birth (see 003_roles.sql)

CREATE TABLE vjm.job_stats_platform (
    scope           text   NOT NULL CHECK (scope IN ('user', 'team')),
    scope_id        text   NOT NULL,
    user_id         text,
    team_id         uuid,
    platform_target text   NOT NULL,
    total_jobs      bigint NOT NULL DEFAULT 0,
    queued_jobs     bigint NOT NULL DEFAULT 0,
    processing_jobs bigint NOT NULL DEFAULT 0,
    completed_jobs  bigint NOT NULL DEFAULT 0,
    failed_jobs     bigint NOT NULL DEFAULT 0,
    cancelled_jobs  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id, platform_target),
    CHECK ((scope = 'user') = (user_id IS NOT NULL) AND (scope = 'team') = (team_id IS NOT NULL))
);

-- Grants and policies mirror vjm.job_stats (003_roles.sql, 004_row_level_security.sql).
GRANT SELECT, INSERT, UPDATE, DELETE ON vjm.job_stats_platform TO vjm_projector;
GRANT SELECT ON vjm.job_stats_platform TO vjm_authenticated, vjm_admin;

ALTER TABLE vjm.job_stats_platform ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON vjm.job_stats_platform TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY projector_all ON vjm.job_stats_platform TO vjm_projector USING (true) WITH CHECK (true);
CREATE POLICY user_read ON vjm.job_stats_platform FOR SELECT TO vjm_authenticated
    USING (user_id = (SELECT vjm.current_user_id()) OR team_id = ANY ((SELECT vjm.current_team_ids())::uuid[]));
CREATE POLICY admin_read ON vjm.job_stats_platform FOR SELECT TO vjm_admin USING (true);

-- Backfill from the projection as it is now. The SHARE lock waits for an apply
-- transaction in flight and holds the next one until this migration commits, so
-- the counters start equal to vjm.jobs at the checkpoint the projector resumes from.
LOCK TABLE vjm.jobs IN SHARE MODE;
INSERT INTO vjm.job_stats_platform (scope, scope_id, user_id, team_id, platform_target, total_jobs, queued_jobs,
                                    processing_jobs, completed_jobs, failed_jobs, cancelled_jobs)
SELECT s.scope, s.scope_id, s.user_id, s.team_id, j.platform_target, count(*),
       count(*) FILTER (WHERE j.status = 'queued'),
       count(*) FILTER (WHERE j.status = 'processing'),
       count(*) FILTER (WHERE j.status = 'completed'),
       count(*) FILTER (WHERE j.status = 'failed'),
       count(*) FILTER (WHERE j.status = 'cancelled')
  FROM vjm.jobs j
 CROSS JOIN LATERAL (VALUES ('user', j.user_id, j.user_id, NULL::uuid),
                            ('team', j.team_id::text, NULL, j.team_id)) AS s(scope, scope_id, user_id, team_id)
 WHERE s.scope_id IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5;
