-- The projector's apply transaction in three statements (listeners/batch.py): lock, read a batch, write it.
-- Same format as events.sql: `-- name --`, one line of description, the statement.

-- projection_batch_lock --
-- Lock the checkpoint (one applier at a time), and keep one plan per statement for the rest of this apply transaction.
-- The session plans for the arguments otherwise (store/role_connection.py). Every table access of the read and the
-- apply is by key or by the log's commit order, so one plan fits every batch, and planning cost more than running
-- under load: the read 0.28 ms, the apply's twenty parts more (bench/README.md). With no sequential scan in them
-- (enable_seqscan = off), a plan made while a table was small is still the index plan when it has grown. DISCARD PLANS
-- at each lease renewal makes them again.
SELECT c.name, c.xact_id, c.position, c.change_seq, c.events
  FROM vjm.projection_checkpoints c,
       LATERAL (SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
                       set_config('enable_seqscan', 'off', true)) s
 WHERE c.name = :name
   FOR UPDATE OF c;

-- projection_batch_read --
-- Events after a cursor in commit-safe order (below vjm.projection_horizon), each job's projected row on its first event.
-- Columns by position: the 14 of an event, `voids` (on a job's first event: the job has a void in the log),
-- then vjm.jobs' columns in JOB_COLUMNS order (all NULL when the job has no row, or on a later event of it).
SELECT e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt, e.attempts_left,
       e.actor, e.user_id, e.team_id, e.occurred_at, e.data,
       CASE WHEN e.first THEN EXISTS (SELECT 1 FROM vjm.job_events v WHERE v.job_id = e.job_id AND v.type = 'void')
            ELSE false END AS voids,
       j.job_id, j.user_id, j.team_id, j.status, j.attempt, j.attempts_left, j.max_attempts, j.worker_id,
       j.idempotency_key, j.original_filename, j.original_filesize, j.clip_count, j.quality_preset,
       j.enhancement_level, j.platform_target, j.priority, j.run_at, j.progress_percent, j.clips_done,
       j.output_paths, j.error_message, j.created_at, j.started_at, j.completed_at, j.cancelled_at,
       j.processing_time, j.last_activity_at, j.version, j.last_position
  FROM (SELECT n.*, row_number() OVER (PARTITION BY n.job_id ORDER BY n.xact_id, n.position) = 1 AS first
          FROM (SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left, actor,
                       user_id, team_id, occurred_at, data
                  FROM vjm.job_events
                 WHERE (xact_id, position) > (:after_xact_id::xid8, :after_position::bigint)
                   AND xact_id < (SELECT vjm.projection_horizon())  -- by the executor, once: not planned per call
                 ORDER BY xact_id, position
                 LIMIT :limit) n) e
  -- LIMIT 1 keeps this a lookup by key per job (see vjm.jobs_before), whatever the table's size.
  LEFT JOIN LATERAL (SELECT * FROM vjm.jobs j WHERE e.first AND j.job_id = e.job_id LIMIT 1) j ON true
 ORDER BY e.xact_id, e.position;

-- projection_plans_discard --
-- Forget this session's kept plans: the next use plans again, for the tables as they are now (every
-- Projector.REPLAN_SECONDS, so that a plan made when a table was small does not outlive its size).
DISCARD PLANS;

-- projection_batch_apply --
-- One batch's writes in one statement: rows, counters (deltas of the rows before and after), feed, notices, checkpoint.
-- The rows after the batch come as one array of vjm.jobs records (:rows); :deletes are the jobs it deleted
-- (the rows before of both are read by key). Every other figure is derived here:
-- the counters from the rows before (this statement's snapshot) and after; the change feed from the batch's
-- last event of each job (:feed_*, in the commit order of those events), numbered after :change_seq; the vjm_jobs notices from the feed entries (one per job up to :per_job_limit, else one summary). A counter row whose total reaches 0
-- is deleted, so the counters equal a recount. Returns the feed entries and the notices it wrote.
WITH after AS (
    SELECT r.* FROM unnest(:rows::vjm.jobs[]) AS r
), contributions AS (
    -- What each touched job counted before (-1) and counts after (+1): its row's share of the counters.
    SELECT -1 AS sign, j.user_id, j.team_id, j.platform_target, j.status, j.processing_time
      FROM (SELECT a.job_id FROM after a UNION ALL SELECT unnest(:deletes::uuid[])) t
     CROSS JOIN LATERAL (SELECT * FROM vjm.jobs j WHERE j.job_id = t.job_id LIMIT 1) j  -- by key, whatever the plan
    UNION ALL
    SELECT 1, a.user_id, a.team_id, a.platform_target, a.status, a.processing_time FROM after a
), scoped AS (
    SELECT s.scope, s.scope_id, s.user_id, s.team_id, c.platform_target, c.sign,
           c.sign * (c.status = 'queued')::int AS queued, c.sign * (c.status = 'processing')::int AS processing,
           c.sign * (c.status = 'completed')::int AS completed, c.sign * (c.status = 'failed')::int AS failed,
           c.sign * (c.status = 'cancelled')::int AS cancelled, c.sign * (c.processing_time IS NOT NULL)::int AS timed,
           c.sign * coalesce(round(c.processing_time * 1000)::bigint, 0) AS ms
      FROM contributions c
     CROSS JOIN LATERAL (VALUES ('user', c.user_id, c.user_id, NULL::uuid),
                                ('team', c.team_id::text, NULL, c.team_id),
                                ('member', c.team_id::text || ':' || c.user_id, c.user_id, c.team_id))
                            AS s(scope, scope_id, user_id, team_id)
     WHERE s.scope_id IS NOT NULL
), stats AS (
    SELECT d.*, (SELECT s.total_jobs FROM vjm.job_stats s WHERE s.scope = d.scope AND s.scope_id = d.scope_id) AS was
      FROM (SELECT scope, scope_id, user_id, team_id, sum(sign) AS total, sum(queued) AS queued,
                   sum(processing) AS processing, sum(completed) AS completed, sum(failed) AS failed,
                   sum(cancelled) AS cancelled, sum(timed) AS timed, sum(ms) AS ms
              FROM scoped GROUP BY scope, scope_id, user_id, team_id) d
     WHERE (d.total, d.queued, d.processing, d.completed, d.failed, d.cancelled, d.timed, d.ms)
           IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0)
), stats_emptied AS (
    DELETE FROM vjm.job_stats s USING stats d
     WHERE s.scope = d.scope AND s.scope_id = d.scope_id AND d.was + d.total = 0
), stats_added AS (
    INSERT INTO vjm.job_stats AS s (scope, scope_id, user_id, team_id, total_jobs, queued_jobs, processing_jobs,
                                    completed_jobs, failed_jobs, cancelled_jobs, timed_jobs, total_processing_ms)
    SELECT scope, scope_id, user_id, team_id, total, queued, processing, completed, failed, cancelled, timed, ms
      FROM stats WHERE coalesce(was, 0) + total <> 0
    ON CONFLICT (scope, scope_id) DO UPDATE SET
        total_jobs = s.total_jobs + excluded.total_jobs, queued_jobs = s.queued_jobs + excluded.queued_jobs,
        processing_jobs = s.processing_jobs + excluded.processing_jobs,
        completed_jobs = s.completed_jobs + excluded.completed_jobs,
        failed_jobs = s.failed_jobs + excluded.failed_jobs, cancelled_jobs = s.cancelled_jobs + excluded.cancelled_jobs,
        timed_jobs = s.timed_jobs + excluded.timed_jobs,
        total_processing_ms = s.total_processing_ms + excluded.total_processing_ms
), platforms AS (
    SELECT d.*, (SELECT s.total_jobs FROM vjm.job_stats_platform s
                  WHERE s.scope = d.scope AND s.scope_id = d.scope_id AND s.platform_target = d.platform_target) AS was
      FROM (SELECT scope, scope_id, user_id, team_id, platform_target, sum(sign) AS total, sum(queued) AS queued,
                   sum(processing) AS processing, sum(completed) AS completed, sum(failed) AS failed,
                   sum(cancelled) AS cancelled
              FROM scoped GROUP BY scope, scope_id, user_id, team_id, platform_target) d
     WHERE (d.total, d.queued, d.processing, d.completed, d.failed, d.cancelled) IS DISTINCT FROM (0, 0, 0, 0, 0, 0)
), platforms_emptied AS (
    DELETE FROM vjm.job_stats_platform s USING platforms d
     WHERE s.scope = d.scope AND s.scope_id = d.scope_id AND s.platform_target = d.platform_target
       AND d.was + d.total = 0
), platforms_added AS (
    INSERT INTO vjm.job_stats_platform AS s (scope, scope_id, user_id, team_id, platform_target, total_jobs,
                                             queued_jobs, processing_jobs, completed_jobs, failed_jobs, cancelled_jobs)
    SELECT scope, scope_id, user_id, team_id, platform_target, total, queued, processing, completed, failed, cancelled
      FROM platforms WHERE coalesce(was, 0) + total <> 0
    ON CONFLICT (scope, scope_id, platform_target) DO UPDATE SET
        total_jobs = s.total_jobs + excluded.total_jobs, queued_jobs = s.queued_jobs + excluded.queued_jobs,
        processing_jobs = s.processing_jobs + excluded.processing_jobs,
        completed_jobs = s.completed_jobs + excluded.completed_jobs,
        failed_jobs = s.failed_jobs + excluded.failed_jobs, cancelled_jobs = s.cancelled_jobs + excluded.cancelled_jobs
), daily_added AS (
    INSERT INTO vjm.job_stats_daily AS d (scope, scope_id, user_id, team_id, day, completed_jobs, failed_jobs,
                                          cancelled_jobs, processing_ms)
    SELECT k.scope, k.scope_id,
           CASE k.scope WHEN 'user' THEN k.scope_id WHEN 'member' THEN substr(k.scope_id, strpos(k.scope_id, ':') + 1) END,
           CASE WHEN k.scope <> 'user' THEN split_part(k.scope_id, ':', 1)::uuid END,
           k.day, k.completed, k.failed, k.cancelled, k.ms
      FROM unnest(:day_scope::text[], :day_scope_id::text[], :day::date[], :day_completed::bigint[],
                  :day_failed::bigint[], :day_cancelled::bigint[], :day_ms::bigint[])
           AS k(scope, scope_id, day, completed, failed, cancelled, ms)
    ON CONFLICT (scope, scope_id, day) DO UPDATE SET
        completed_jobs = d.completed_jobs + excluded.completed_jobs, failed_jobs = d.failed_jobs + excluded.failed_jobs,
        cancelled_jobs = d.cancelled_jobs + excluded.cancelled_jobs, processing_ms = d.processing_ms + excluded.processing_ms
), upserted AS (
    INSERT INTO vjm.jobs AS j (job_id, user_id, team_id, status, attempt, attempts_left, max_attempts, worker_id,
                               idempotency_key, original_filename, original_filesize, clip_count, quality_preset,
                               enhancement_level, platform_target, priority, run_at, progress_percent, clips_done,
                               output_paths, error_message, created_at, started_at, completed_at, cancelled_at,
                               processing_time, last_activity_at, version, last_position)
    SELECT a.job_id, a.user_id, a.team_id, a.status, a.attempt, a.attempts_left, a.max_attempts, a.worker_id,
           a.idempotency_key, a.original_filename, a.original_filesize, a.clip_count, a.quality_preset,
           a.enhancement_level, a.platform_target, a.priority, a.run_at, a.progress_percent, a.clips_done,
           a.output_paths,
           a.error_message, a.created_at, a.started_at, a.completed_at, a.cancelled_at, a.processing_time,
           a.last_activity_at, a.version, a.last_position
      FROM after a
    ON CONFLICT (job_id) DO UPDATE SET
        user_id = excluded.user_id, team_id = excluded.team_id, status = excluded.status,
        idempotency_key = excluded.idempotency_key,
        attempt = excluded.attempt, attempts_left = excluded.attempts_left, max_attempts = excluded.max_attempts,
        worker_id = excluded.worker_id, original_filename = excluded.original_filename,
        original_filesize = excluded.original_filesize, clip_count = excluded.clip_count,
        quality_preset = excluded.quality_preset, enhancement_level = excluded.enhancement_level,
        platform_target = excluded.platform_target, priority = excluded.priority, run_at = excluded.run_at,
        progress_percent = excluded.progress_percent,
        clips_done = excluded.clips_done, output_paths = excluded.output_paths,
        error_message = excluded.error_message, created_at = excluded.created_at,
        started_at = excluded.started_at, completed_at = excluded.completed_at, cancelled_at = excluded.cancelled_at,
        processing_time = excluded.processing_time, last_activity_at = excluded.last_activity_at,
        version = excluded.version, last_position = excluded.last_position
), deleted AS (
    DELETE FROM vjm.jobs j WHERE j.job_id = ANY (:deletes::uuid[])
), transitions AS (
    INSERT INTO vjm.transition_counts AS t (type, events)
    SELECT * FROM unnest(:types::text[], :counts::bigint[])
    ON CONFLICT (type) DO UPDATE SET events = t.events + excluded.events
), changes AS (
    -- The feed entries: each job's last event of the batch, in commit order (store.projections.apply.feed_entries),
    -- numbered after :change_seq. From the batch the projector read, not from the log: no scan whose plan
    -- depends on where the cursor is, so the statement keeps one plan (projection_batch_lock).
    SELECT :change_seq::bigint + l.n AS seq, l.xact_id::text::xid8 AS xact_id, l.position, l.job_id, l.user_id,
           l.team_id, l.status, l.version
      FROM unnest(:feed_xact_ids::bigint[], :feed_positions::bigint[], :feed_job_ids::uuid[], :feed_user_ids::text[],
                  :feed_team_ids::uuid[], :feed_statuses::text[], :feed_versions::integer[])
           WITH ORDINALITY AS l(xact_id, position, job_id, user_id, team_id, status, version, n)
), feed AS (
    INSERT INTO vjm.job_changes (seq, xact_id, position, job_id, user_id, team_id, status, version)
    SELECT seq, xact_id, position, job_id, user_id, team_id, status, version FROM changes
), advanced AS (
    UPDATE vjm.projection_checkpoints
       SET xact_id = :xact_id::xid8, position = :position::bigint,
           change_seq = :change_seq::bigint + (SELECT count(*) FROM changes), events = events + :events::bigint,
           updated_at = now()
     WHERE name = :name
), notices AS (
    -- The payloads of listeners/notifications.py (JobNotice, BatchNotice): ids and states only.
    SELECT count(pg_notify('vjm_jobs', p.payload)) AS sent
      FROM (SELECT c.seq, jsonb_build_object('type', 'job', 'seq', c.seq, 'position', c.position, 'job_id', c.job_id,
                                             'status', c.status, 'version', c.version, 'user_id', c.user_id,
                                             'team_id', c.team_id,
                                             'cursor', jsonb_build_array(:xact_id::xid8::text::bigint, :position::bigint)
                                            )::text AS payload
              FROM changes c
             WHERE (SELECT count(*) FROM changes) <= :per_job_limit::int
            UNION ALL
            SELECT max(c.seq), jsonb_build_object('type', 'batch', 'seq_from', min(c.seq), 'seq_to', max(c.seq),
                                                  'jobs', count(*), 'events', :events::bigint,
                                                  'position', :position::bigint,
                                                  'cursor', jsonb_build_array(:xact_id::xid8::text::bigint,
                                                                              :position::bigint))::text
              FROM changes c
            HAVING count(*) > :per_job_limit::int
             ORDER BY 1) p
)
SELECT (SELECT count(*) FROM changes) AS jobs, (SELECT sent FROM notices) AS notifications;
