-- Named queries of the listeners (projector, stuck detector, rebuild, subscriptions).
-- Same format as events.sql: `-- name --`, one line of description, the statement.

-- projection_checkpoint_ensure --
-- Create a projector's checkpoint row if it does not exist yet.
INSERT INTO vjm.projection_checkpoints (name) VALUES (:name) ON CONFLICT (name) DO NOTHING;

-- projection_checkpoint_get --
-- A projector's checkpoint, without locking.
SELECT name, xact_id, position, change_seq, events FROM vjm.projection_checkpoints WHERE name = :name;

-- projection_checkpoint_lock --
-- A projector's checkpoint, locked until the end of the transaction: one applier at a time.
SELECT name, xact_id, position, change_seq, events FROM vjm.projection_checkpoints WHERE name = :name FOR UPDATE;

-- projection_leader_try_lock --
-- Take or renew the projector's lease for :ttl_seconds seconds (vjm.projector_leases): true while this session leads;
-- the session checks in as a candidate (vjm.projector_candidates), naming its :process ('host:pid').
SELECT vjm.try_lead_projector(:name, make_interval(secs => :ttl_seconds::float8), :process::text);

-- projection_leader_unlock --
-- Give up leadership (closing the connection frees the lease too).
SELECT vjm.stop_leading_projector(:name);

-- projection_leader_get --
-- Who holds the projector's lease, and whether it still binds (for a standby's log and status).
SELECT l.name, l.holder_pid, l.acquired_at, l.renewed_at, l.expires_at,
       vjm.projector_lease_live(l) AS live
  FROM vjm.projector_leases l
 WHERE l.name = :name;

-- maintenance_statement_timeout_lift --
-- No statement_timeout for the rest of this transaction (rebuild, verify: one replay of the whole log).
SELECT set_config('statement_timeout', '0', true);

-- projection_doorbell_arm --
-- About to sleep after catching up to the cursor: 'armed' (doorbell lock held), 'pending', 'held' or 'busy'.
SELECT vjm.arm_doorbell(:xact_id::xid8, :position::bigint);

-- projection_doorbell_release --
-- Awake: appends stop ringing.
SELECT vjm.release_doorbell();

-- projection_doorbell_holders --
-- Who holds the doorbell lock, when the projector cannot arm it for long.
SELECT pid, mode, granted FROM vjm.doorbell_holders();

-- projection_lag_get --
-- Committed events after a cursor, those held back behind the horizon by an open transaction, and
-- that transaction's backend (pid always; state and age only where the caller may see them).
WITH horizon AS (SELECT vjm.projection_horizon() AS xmin),
behind AS (
    SELECT count(*) AS events,
           min(e.occurred_at) AS oldest,
           count(*) FILTER (WHERE e.xact_id >= h.xmin) AS held,
           min(e.occurred_at) FILTER (WHERE e.xact_id >= h.xmin) AS oldest_held
      FROM vjm.job_events e, horizon h
     WHERE (e.xact_id, e.position) > (:after_xact_id::xid8, :after_position::bigint)
)
SELECT h.xmin, b.events, b.held,
       coalesce(extract(epoch FROM clock_timestamp() - b.oldest), 0)::float8 AS seconds_behind,
       coalesce(extract(epoch FROM clock_timestamp() - b.oldest_held), 0)::float8 AS held_seconds,
       a.pid AS blocking_pid, a.state AS blocking_state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS blocking_xact_seconds
  FROM horizon h CROSS JOIN behind b
  LEFT JOIN LATERAL (SELECT a.pid, a.state, a.xact_start FROM pg_stat_activity a
                      WHERE b.held > 0 AND a.backend_xid = h.xmin::xid LIMIT 1) a ON true;

-- job_change_get_after --
-- The change feed after a sequence number, in order.
SELECT seq, xact_id, position, job_id, user_id, team_id, status, version, changed_at
  FROM vjm.job_changes
 WHERE seq > :after_seq
 ORDER BY seq
 LIMIT :limit;

-- job_change_get_last --
-- The newest sequence number in the change feed (0 when it is empty).
SELECT coalesce(max(seq), 0) FROM vjm.job_changes;

-- job_change_visible_many --
-- Which of these feed rows the caller (an end user, acting_as) may read: RLS on vjm.job_changes decides.
SELECT seq FROM vjm.job_changes_visible(:seqs::bigint[]) AS v(seq);

-- job_change_prune --
-- Forget feed entries older than the given number of seconds.
DELETE FROM vjm.job_changes WHERE changed_at < now() - make_interval(secs => :older_than_seconds);

-- job_get_stuck --
-- Processing jobs idle for longer than :timeout_seconds seconds, the longest idle first to the minute: the candidates
-- in the order of the partial index jobs_processing_idle (the minute of their last activity), then the exact idle
-- time. In index order, so the scan stops after :limit stuck jobs however many there are (ordered by the exact time,
-- it read and sorted every one of them: 50,000 at W5's 1M jobs).
-- A job whose attempt holds a lease (a videojobs.Worker runs it) is left to its lease: heartbeats write no events.
SELECT job_id, version, attempt, attempts_left,
       extract(epoch FROM statement_timestamp() - last_activity_at)::float8 AS idle_seconds
  FROM vjm.jobs j
 WHERE status = 'processing'
   AND activity_minute <= vjm.epoch_minute(statement_timestamp() - make_interval(secs => :timeout_seconds))
   AND last_activity_at < statement_timestamp() - make_interval(secs => :timeout_seconds)
   AND NOT EXISTS (SELECT 1 FROM vjm.leases l WHERE l.job_id = j.job_id AND l.attempt = j.attempt)
 ORDER BY activity_minute
 LIMIT :limit;

-- event_get_all_by_job --
-- Every event up to a commit-order cursor, grouped by job in version order (for replay).
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at, data
  FROM vjm.job_events
 WHERE (xact_id, position) <= (:upto_xact_id::xid8, :upto_position::bigint)
 ORDER BY job_id, version;

-- replay_tables_create --
-- Shadow tables for a replay, private to this transaction.
CREATE TEMP TABLE jobs_replay (LIKE vjm.jobs INCLUDING DEFAULTS) ON COMMIT DROP;
ALTER TABLE jobs_replay DROP COLUMN activity_minute;  -- computed by vjm.jobs: the replay holds the folded columns only
CREATE TEMP TABLE job_stats_replay (
    scope text, scope_id text, user_id text, team_id uuid, total_jobs bigint, queued_jobs bigint,
    processing_jobs bigint, completed_jobs bigint, failed_jobs bigint, cancelled_jobs bigint,
    timed_jobs bigint, total_processing_ms bigint, PRIMARY KEY (scope, scope_id)) ON COMMIT DROP;
CREATE TEMP TABLE job_stats_daily_replay (
    scope text, scope_id text, user_id text, team_id uuid, day date, completed_jobs bigint,
    failed_jobs bigint, cancelled_jobs bigint, processing_ms bigint, PRIMARY KEY (scope, scope_id, day)) ON COMMIT DROP;
CREATE TEMP TABLE job_stats_platform_replay (
    scope text, scope_id text, user_id text, team_id uuid, platform_target text, total_jobs bigint,
    queued_jobs bigint, processing_jobs bigint, completed_jobs bigint, failed_jobs bigint, cancelled_jobs bigint,
    PRIMARY KEY (scope, scope_id, platform_target)) ON COMMIT DROP;
ALTER TABLE jobs_replay ADD PRIMARY KEY (job_id);

-- job_get_all --
-- Every projected row in job_id order (verify streams it next to the replay).
SELECT job_id, user_id, team_id, status, attempt, attempts_left, max_attempts, worker_id, idempotency_key,
       original_filename, original_filesize, clip_count, quality_preset, enhancement_level,
       platform_target, priority, run_at, progress_percent, clips_done, output_paths, error_message, created_at,
       started_at, completed_at, cancelled_at, processing_time, last_activity_at, version, last_position
  FROM vjm.jobs
 ORDER BY job_id;

-- job_stats_get_all --
-- Every stats counter row.
SELECT scope, scope_id, total_jobs, queued_jobs, processing_jobs, completed_jobs, failed_jobs, cancelled_jobs,
       timed_jobs, total_processing_ms
  FROM vjm.job_stats;

-- job_stats_daily_get_all --
-- Every daily bucket.
SELECT scope, scope_id, day, completed_jobs, failed_jobs, cancelled_jobs, processing_ms FROM vjm.job_stats_daily;

-- job_stats_platform_get_all --
-- Every platform counter row.
SELECT scope, scope_id, platform_target, total_jobs, queued_jobs, processing_jobs, completed_jobs, failed_jobs,
       cancelled_jobs
  FROM vjm.job_stats_platform;

-- job_stats_recount_diff --
-- Stats counters that differ from a recount over vjm.jobs (docs/ARCHITECTURE.md, invariant 8).
WITH recount AS (
    SELECT s.scope, s.scope_id, s.user_id, s.team_id, count(*) AS total_jobs,
           count(*) FILTER (WHERE j.status = 'queued') AS queued_jobs,
           count(*) FILTER (WHERE j.status = 'processing') AS processing_jobs,
           count(*) FILTER (WHERE j.status = 'completed') AS completed_jobs,
           count(*) FILTER (WHERE j.status = 'failed') AS failed_jobs,
           count(*) FILTER (WHERE j.status = 'cancelled') AS cancelled_jobs,
           count(j.processing_time) AS timed_jobs,
           coalesce(sum(round(j.processing_time * 1000)), 0)::bigint AS total_processing_ms
      FROM vjm.jobs j
     CROSS JOIN LATERAL (VALUES ('user', j.user_id, j.user_id, NULL::uuid),
                                ('team', j.team_id::text, NULL, j.team_id),
                                ('member', j.team_id::text || ':' || j.user_id, j.user_id, j.team_id))
                            AS s(scope, scope_id, user_id, team_id)
     WHERE s.scope_id IS NOT NULL
     GROUP BY 1, 2, 3, 4
),
live AS (SELECT scope, scope_id, user_id, team_id, total_jobs, queued_jobs, processing_jobs, completed_jobs,
                failed_jobs, cancelled_jobs, timed_jobs, total_processing_ms FROM vjm.job_stats)
SELECT coalesce(l.scope, r.scope) || ':' || coalesce(l.scope_id, r.scope_id) AS key,
       CASE WHEN l.scope IS NULL THEN 'missing' WHEN r.scope IS NULL THEN 'extra' ELSE 'different' END AS kind,
       CASE WHEN l.scope IS NULL THEN NULL ELSE to_jsonb(l) END AS live,
       CASE WHEN r.scope IS NULL THEN NULL ELSE to_jsonb(r) END AS replay
  FROM live l
  FULL JOIN recount r ON r.scope = l.scope AND r.scope_id = l.scope_id
 WHERE l.scope IS NULL OR r.scope IS NULL OR to_jsonb(l) <> to_jsonb(r)
 ORDER BY 1
 LIMIT :limit;

-- job_stats_platform_recount_diff --
-- Platform counters that differ from a recount over vjm.jobs.
WITH recount AS (
    SELECT s.scope, s.scope_id, s.user_id, s.team_id, j.platform_target, count(*) AS total_jobs,
           count(*) FILTER (WHERE j.status = 'queued') AS queued_jobs,
           count(*) FILTER (WHERE j.status = 'processing') AS processing_jobs,
           count(*) FILTER (WHERE j.status = 'completed') AS completed_jobs,
           count(*) FILTER (WHERE j.status = 'failed') AS failed_jobs,
           count(*) FILTER (WHERE j.status = 'cancelled') AS cancelled_jobs
      FROM vjm.jobs j
     CROSS JOIN LATERAL (VALUES ('user', j.user_id, j.user_id, NULL::uuid),
                                ('team', j.team_id::text, NULL, j.team_id),
                                ('member', j.team_id::text || ':' || j.user_id, j.user_id, j.team_id))
                            AS s(scope, scope_id, user_id, team_id)
     WHERE s.scope_id IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5
),
live AS (SELECT scope, scope_id, user_id, team_id, platform_target, total_jobs, queued_jobs, processing_jobs,
                completed_jobs, failed_jobs, cancelled_jobs FROM vjm.job_stats_platform)
SELECT coalesce(l.scope, r.scope) || ':' || coalesce(l.scope_id, r.scope_id) || ':'
           || coalesce(l.platform_target, r.platform_target) AS key,
       CASE WHEN l.scope IS NULL THEN 'missing' WHEN r.scope IS NULL THEN 'extra' ELSE 'different' END AS kind,
       CASE WHEN l.scope IS NULL THEN NULL ELSE to_jsonb(l) END AS live,
       CASE WHEN r.scope IS NULL THEN NULL ELSE to_jsonb(r) END AS replay
  FROM live l
  FULL JOIN recount r ON r.scope = l.scope AND r.scope_id = l.scope_id AND r.platform_target = l.platform_target
 WHERE l.scope IS NULL OR r.scope IS NULL OR to_jsonb(l) <> to_jsonb(r)
 ORDER BY 1
 LIMIT :limit;

-- jobs_replay_merge --
-- Swap the replay in, in place: rows that differ are overwritten, missing ones added (readers are never blocked).
INSERT INTO vjm.jobs AS j SELECT * FROM pg_temp.jobs_replay
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
 WHERE j IS DISTINCT FROM excluded;

-- jobs_replay_prune --
-- Remove live jobs that the replay does not have.
DELETE FROM vjm.jobs j WHERE NOT EXISTS (SELECT 1 FROM pg_temp.jobs_replay r WHERE r.job_id = j.job_id);

-- job_stats_replay_merge --
-- Replace the stats counters with the replayed ones, in place.
INSERT INTO vjm.job_stats AS s (scope, scope_id, user_id, team_id, total_jobs, queued_jobs, processing_jobs,
                                completed_jobs, failed_jobs, cancelled_jobs, timed_jobs, total_processing_ms)
SELECT * FROM pg_temp.job_stats_replay
ON CONFLICT (scope, scope_id) DO UPDATE SET
    user_id = excluded.user_id, team_id = excluded.team_id, total_jobs = excluded.total_jobs,
    queued_jobs = excluded.queued_jobs, processing_jobs = excluded.processing_jobs,
    completed_jobs = excluded.completed_jobs, failed_jobs = excluded.failed_jobs,
    cancelled_jobs = excluded.cancelled_jobs, timed_jobs = excluded.timed_jobs,
    total_processing_ms = excluded.total_processing_ms
 WHERE (s.total_jobs, s.queued_jobs, s.processing_jobs, s.completed_jobs, s.failed_jobs, s.cancelled_jobs,
        s.timed_jobs, s.total_processing_ms)
       IS DISTINCT FROM (excluded.total_jobs, excluded.queued_jobs, excluded.processing_jobs,
        excluded.completed_jobs, excluded.failed_jobs, excluded.cancelled_jobs, excluded.timed_jobs,
        excluded.total_processing_ms);

-- job_stats_replay_prune --
-- Remove stats rows that the replay does not have.
DELETE FROM vjm.job_stats s
 WHERE NOT EXISTS (SELECT 1 FROM pg_temp.job_stats_replay r WHERE r.scope = s.scope AND r.scope_id = s.scope_id);

-- job_stats_daily_replay_merge --
-- Replace the daily buckets with the replayed ones, in place.
INSERT INTO vjm.job_stats_daily AS d (scope, scope_id, user_id, team_id, day, completed_jobs, failed_jobs,
                                      cancelled_jobs, processing_ms)
SELECT * FROM pg_temp.job_stats_daily_replay
ON CONFLICT (scope, scope_id, day) DO UPDATE SET
    completed_jobs = excluded.completed_jobs, failed_jobs = excluded.failed_jobs,
    cancelled_jobs = excluded.cancelled_jobs, processing_ms = excluded.processing_ms
 WHERE (d.completed_jobs, d.failed_jobs, d.cancelled_jobs, d.processing_ms)
       IS DISTINCT FROM (excluded.completed_jobs, excluded.failed_jobs, excluded.cancelled_jobs, excluded.processing_ms);

-- job_stats_daily_replay_prune --
-- Remove daily buckets that the replay does not have.
DELETE FROM vjm.job_stats_daily d
 WHERE NOT EXISTS (SELECT 1 FROM pg_temp.job_stats_daily_replay r
                    WHERE r.scope = d.scope AND r.scope_id = d.scope_id AND r.day = d.day);

-- job_stats_platform_replay_merge --
-- Replace the platform counters with the replayed ones, in place.
INSERT INTO vjm.job_stats_platform AS s (scope, scope_id, user_id, team_id, platform_target, total_jobs,
                                         queued_jobs, processing_jobs, completed_jobs, failed_jobs, cancelled_jobs)
SELECT * FROM pg_temp.job_stats_platform_replay
ON CONFLICT (scope, scope_id, platform_target) DO UPDATE SET
    user_id = excluded.user_id, team_id = excluded.team_id, total_jobs = excluded.total_jobs,
    queued_jobs = excluded.queued_jobs, processing_jobs = excluded.processing_jobs,
    completed_jobs = excluded.completed_jobs, failed_jobs = excluded.failed_jobs,
    cancelled_jobs = excluded.cancelled_jobs
 WHERE (s.total_jobs, s.queued_jobs, s.processing_jobs, s.completed_jobs, s.failed_jobs, s.cancelled_jobs)
       IS DISTINCT FROM (excluded.total_jobs, excluded.queued_jobs, excluded.processing_jobs,
        excluded.completed_jobs, excluded.failed_jobs, excluded.cancelled_jobs);

-- job_stats_platform_replay_prune --
-- Remove platform counter rows that the replay does not have.
DELETE FROM vjm.job_stats_platform s
 WHERE NOT EXISTS (SELECT 1 FROM pg_temp.job_stats_platform_replay r
                    WHERE r.scope = s.scope AND r.scope_id = s.scope_id AND r.platform_target = s.platform_target);

-- transition_counts_get --
-- Events applied to the read models, by type.
SELECT type, events FROM vjm.transition_counts ORDER BY type;

-- transition_counts_recount_diff --
-- Counters that differ from a recount of the log up to the checkpoint (:upto_xact_id, :upto_position).
WITH recount AS (
    SELECT e.type, count(*) AS events FROM vjm.job_events e
     WHERE (e.xact_id, e.position) <= (:upto_xact_id::xid8, :upto_position::bigint) GROUP BY e.type
)
SELECT 'transition_counts:' || coalesce(l.type, r.type) AS key,
       CASE WHEN l.type IS NULL THEN 'missing' WHEN r.type IS NULL THEN 'extra' ELSE 'different' END AS kind,
       CASE WHEN l.type IS NULL THEN NULL ELSE to_jsonb(l) END AS live,
       CASE WHEN r.type IS NULL THEN NULL ELSE to_jsonb(r) END AS replay
  FROM vjm.transition_counts l
  FULL JOIN recount r ON r.type = l.type
 WHERE l.type IS NULL OR r.type IS NULL OR l.events <> r.events
 ORDER BY 1;

-- transition_counts_recount --
-- Make the counters a recount of the log up to the checkpoint (:upto_xact_id, :upto_position): rebuild's.
WITH recount AS (
    SELECT e.type, count(*) AS events FROM vjm.job_events e
     WHERE (e.xact_id, e.position) <= (:upto_xact_id::xid8, :upto_position::bigint) GROUP BY e.type
), gone AS (
    DELETE FROM vjm.transition_counts t WHERE NOT EXISTS (SELECT 1 FROM recount r WHERE r.type = t.type)
    RETURNING 1
), set AS (
    INSERT INTO vjm.transition_counts AS t (type, events) SELECT r.type, r.events FROM recount r
    ON CONFLICT (type) DO UPDATE SET events = excluded.events WHERE t.events <> excluded.events
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM set);
