-- Named queries of the VideoJobManager read side (store/jobs.py) and audit (store/audit.py).
-- Same format as events.sql: `-- name --`, one line of description, the statement.

-- job_get --
-- One projected job by id (RLS decides whether the caller sees it).
SELECT job_id, user_id, team_id, status, attempt, attempts_left, max_attempts, worker_id, idempotency_key,
       original_filename, original_filesize, clip_count, quality_preset, enhancement_level,
       platform_target, priority, run_at, progress_percent, clips_done, output_paths, error_message, created_at,
       started_at, completed_at, cancelled_at, processing_time, last_activity_at, version, last_position
  FROM vjm.jobs
 WHERE job_id = :job_id;

-- job_find_page --
-- A filtered page, newest first: keyset after (:after_created_at, :after_job_id) when given, else OFFSET :offset.
-- Scope: :user_id or :team_id (NULL: every job the caller may see); a NULL filter matches every job.
SELECT job_id, user_id, team_id, status, attempt, attempts_left, max_attempts, worker_id, idempotency_key,
       original_filename, original_filesize, clip_count, quality_preset, enhancement_level,
       platform_target, priority, run_at, progress_percent, clips_done, output_paths, error_message, created_at,
       started_at, completed_at, cancelled_at, processing_time, last_activity_at, version, last_position
  FROM vjm.jobs
 WHERE (:user_id::text IS NULL OR user_id = :user_id)
   AND (:team_id::uuid IS NULL OR team_id = :team_id)
   AND (:statuses::text[] IS NULL OR status = ANY(:statuses))
   AND (:platform_target::text IS NULL OR platform_target = :platform_target)
   AND (:quality_preset::text IS NULL OR quality_preset = :quality_preset)
   AND (:enhancement_level::text IS NULL OR enhancement_level = :enhancement_level)
   AND (NOT :scheduled::boolean OR (status = 'queued' AND run_at > statement_timestamp()))
   AND (:created_from::timestamptz IS NULL OR created_at >= :created_from)
   AND (:created_before::timestamptz IS NULL OR created_at < :created_before)
   AND (:after_created_at::timestamptz IS NULL OR (created_at, job_id) < (:after_created_at, :after_job_id::uuid))
 ORDER BY created_at DESC, job_id DESC
 LIMIT :limit OFFSET :offset;

-- job_count --
-- How many jobs match the same filters as job_find_page (without the keyset).
SELECT count(*)
  FROM vjm.jobs
 WHERE (:user_id::text IS NULL OR user_id = :user_id)
   AND (:team_id::uuid IS NULL OR team_id = :team_id)
   AND (:statuses::text[] IS NULL OR status = ANY(:statuses))
   AND (:platform_target::text IS NULL OR platform_target = :platform_target)
   AND (:quality_preset::text IS NULL OR quality_preset = :quality_preset)
   AND (:enhancement_level::text IS NULL OR enhancement_level = :enhancement_level)
   AND (NOT :scheduled::boolean OR (status = 'queued' AND run_at > statement_timestamp()))
   AND (:created_from::timestamptz IS NULL OR created_at >= :created_from)
   AND (:created_before::timestamptz IS NULL OR created_at < :created_before);

-- job_stats_get --
-- The counters of the scopes named (:scopes, :scope_ids, :signs: store/jobs.py, StatsScope), summed, each by
-- its key; a NULL scope id stands for every row of that scope that Row Level Security lets the caller read.
-- With :days, also the jobs per platform and status, and the finished work of the last :days days, in the
-- same statement: one snapshot (the breakdowns add up to the totals) and one round trip. Rows by kind:
-- 'total' (one), 'platform' (one per platform), 'day' (one per day with finished work).
-- (The breakdowns are gated by a sub-select, which no plan folds away: so a plan made for :days NULL costs what one
-- made for a number costs, and the statement keeps one generic plan whichever its callers ask. Folded, the plans
-- for NULL looked cheaper, and the statement was planned anew at every call: 0.6 of its 0.9 ms at W5's 1M jobs.)
WITH k AS MATERIALIZED (
    SELECT * FROM unnest(:scopes::text[], :scope_ids::text[], :signs::integer[]) AS k(scope, scope_id, sign)
), totals AS (
    SELECT k.sign, s.* FROM k JOIN vjm.job_stats s ON s.scope = k.scope AND s.scope_id = k.scope_id
    UNION ALL
    SELECT k.sign, s.* FROM k JOIN vjm.job_stats s ON s.scope = k.scope WHERE k.scope_id IS NULL
), platforms AS (
    SELECT k.sign, p.* FROM k JOIN vjm.job_stats_platform p ON p.scope = k.scope AND p.scope_id = k.scope_id
     WHERE (SELECT :days::integer) IS NOT NULL
    UNION ALL
    SELECT k.sign, p.* FROM k JOIN vjm.job_stats_platform p ON p.scope = k.scope
     WHERE k.scope_id IS NULL AND (SELECT :days::integer) IS NOT NULL
), days AS (
    SELECT k.sign, d.* FROM k JOIN vjm.job_stats_daily d ON d.scope = k.scope AND d.scope_id = k.scope_id
     WHERE (SELECT :days::integer) IS NOT NULL AND d.day > (now() AT TIME ZONE 'UTC')::date - (SELECT :days::integer)
    UNION ALL
    SELECT k.sign, d.* FROM k JOIN vjm.job_stats_daily d ON d.scope = k.scope
     WHERE (SELECT :days::integer) IS NOT NULL AND k.scope_id IS NULL
       AND d.day > (now() AT TIME ZONE 'UTC')::date - (SELECT :days::integer)
)
SELECT 'total' AS kind, NULL::text AS platform_target, NULL::date AS day,
       coalesce(sum(sign * total_jobs), 0)::bigint AS total_jobs,
       coalesce(sum(sign * queued_jobs), 0)::bigint AS queued_jobs,
       coalesce(sum(sign * processing_jobs), 0)::bigint AS processing_jobs,
       coalesce(sum(sign * completed_jobs), 0)::bigint AS completed_jobs,
       coalesce(sum(sign * failed_jobs), 0)::bigint AS failed_jobs,
       coalesce(sum(sign * cancelled_jobs), 0)::bigint AS cancelled_jobs,
       coalesce(sum(sign * timed_jobs), 0)::bigint AS timed_jobs,
       coalesce(sum(sign * total_processing_ms), 0)::bigint AS processing_ms
  FROM totals
UNION ALL
SELECT 'platform', platform_target, NULL, sum(sign * total_jobs)::bigint, sum(sign * queued_jobs)::bigint,
       sum(sign * processing_jobs)::bigint, sum(sign * completed_jobs)::bigint, sum(sign * failed_jobs)::bigint,
       sum(sign * cancelled_jobs)::bigint, NULL, NULL
  FROM platforms
 GROUP BY platform_target
HAVING sum(sign * total_jobs) <> 0
UNION ALL
SELECT 'day', NULL, day, NULL, NULL, NULL, sum(sign * completed_jobs)::bigint, sum(sign * failed_jobs)::bigint,
       sum(sign * cancelled_jobs)::bigint, NULL, sum(sign * processing_ms)::bigint
  FROM days
 GROUP BY day
HAVING sum(sign * (completed_jobs + failed_jobs + cancelled_jobs)) <> 0;

-- claim_waits_get --
-- Claim latency per platform (vjm.claim_waits, schema/072_claim_waits.sql): the starts of the last :hours hours by
-- the database clock, of owner :user_id or team :team_id when named (NULL: every start the caller may see).
SELECT platform_target, claims, p50_seconds, p95_seconds, max_seconds
  FROM vjm.claim_waits(now() - make_interval(hours => :hours::integer), :user_id::text, :team_id::uuid);

-- job_claim_many --
-- Start up to :limit queued jobs for worker :worker_id, oldest first, of the :platforms (NULL: every platform), with a
-- lease of :lease_seconds on each (none when NULL): kind 'new' rows are the start events in claim order, kind 'before'
-- rows what each job was before it (vjm.jobs_before), to fold the jobs from.
WITH claimed AS MATERIALIZED (
    SELECT * FROM vjm.claim_jobs(:worker_id, :limit, :platforms::text[], :lease_seconds::float8)
)
SELECT 'new' AS kind, c.position, c.xact_id, c.job_id, c.version, c.type, c.from_state, c.to_state, c.attempt,
       c.attempts_left, c.actor, c.user_id, c.team_id, c.occurred_at, c.data, NULL::jsonb AS base
  FROM claimed c
UNION ALL
SELECT 'before', b.position, b.xact_id, b.job_id, b.version, b.type, b.from_state, b.to_state, b.attempt,
       b.attempts_left, b.actor, b.user_id, b.team_id, b.occurred_at, b.data, b.base
  FROM (SELECT array_agg(c.job_id) AS ids, array_agg(c.version) AS versions FROM claimed c) k
 CROSS JOIN LATERAL vjm.jobs_before(k.ids, k.versions) b
 WHERE k.ids IS NOT NULL;

-- event_append_many --
-- Up to 50 transitions in one statement, each judged on its own (vjm.append_events): kind 'new' rows, one per
-- item, carry its error or its event; kind 'before' rows what each changed job was before (vjm.jobs_before).
WITH results AS MATERIALIZED (
    SELECT * FROM vjm.append_events(:job_ids::uuid[], :triggers::text[], :data::jsonb[], :actors::text[],
                                    :attempts::int[], :expected_versions::int[])
)
SELECT 'new' AS kind, r.item, r.error_code, r.error_message, r.error_detail, r.error_hint, r.position, r.xact_id,
       r.job_id, r.version, r.type, r.from_state, r.to_state, r.attempt, r.attempts_left, r.actor, r.user_id,
       r.team_id, r.occurred_at, r.data, NULL::jsonb AS base
  FROM results r
UNION ALL
SELECT 'before', NULL, NULL, NULL, NULL, NULL, b.position, b.xact_id, b.job_id, b.version, b.type, b.from_state,
       b.to_state, b.attempt, b.attempts_left, b.actor, b.user_id, b.team_id, b.occurred_at, b.data, b.base
  FROM (SELECT array_agg(r.job_id) AS ids, array_agg(r.version) AS versions FROM results r
         WHERE r.error_code IS NULL) k
 CROSS JOIN LATERAL vjm.jobs_before(k.ids, k.versions) b
 WHERE k.ids IS NOT NULL;

-- event_append_many_events --
-- As event_append_many, without what each job was before: the appended events and the refusals only (a
-- worker's batched completions need no job rows back), without their payloads (the caller sent them).
SELECT r.item, r.error_code, r.error_message, r.error_detail, r.error_hint, r.position, r.xact_id, r.job_id,
       r.version, r.type, r.from_state, r.to_state, r.attempt, r.attempts_left, r.actor, r.user_id, r.team_id,
       r.occurred_at
  FROM vjm.append_events(:job_ids::uuid[], :triggers::text[], :data::jsonb[], :actors::text[], :attempts::int[],
                         :expected_versions::int[]) r;

-- event_append_mixed --
-- Creates (vjm.append_create_batch: all or nothing, a refused one fails the statement) and transitions
-- (vjm.append_events: each judged on its own) in one statement and one commit: a write combiner's round. Kind
-- 'create' rows are the creates (item: their number in the order sent; what the database decided, as
-- event_append_creates), kind 'transition' rows the transitions' outcomes (as event_append_many_events).
WITH created AS MATERIALIZED (
    SELECT c.ordinality::integer AS item, c.position, c.xact_id, c.job_id, c.attempts_left, c.actor, c.occurred_at
      FROM vjm.append_create_batch(:create_job_ids::uuid[], :create_payloads_json::text::jsonb,
                                   :create_actors::text[], :create_user_ids::text[], :create_team_ids::uuid[])
           WITH ORDINALITY AS c
), appended AS MATERIALIZED (
    SELECT r.item, r.error_code, r.error_message, r.error_detail, r.error_hint, r.position, r.xact_id, r.job_id,
           r.version, r.type, r.from_state, r.to_state, r.attempt, r.attempts_left, r.actor, r.user_id, r.team_id,
           r.occurred_at
      FROM vjm.append_events(:job_ids::uuid[], :triggers::text[], :data::jsonb[], :actors::text[], :attempts::int[],
                             :expected_versions::int[]) r
)
SELECT 'create' AS kind, c.item, NULL::text AS error_code, NULL::text AS error_message, NULL::text AS error_detail,
       NULL::text AS error_hint, c.position, c.xact_id, c.job_id, NULL::integer AS version, NULL::text AS type,
       NULL::text AS from_state, NULL::text AS to_state, NULL::integer AS attempt, c.attempts_left, c.actor,
       NULL::text AS user_id, NULL::uuid AS team_id, c.occurred_at
  FROM created c
UNION ALL
SELECT 'transition', a.item, a.error_code, a.error_message, a.error_detail, a.error_hint, a.position, a.xact_id,
       a.job_id, a.version, a.type, a.from_state, a.to_state, a.attempt, a.attempts_left, a.actor, a.user_id,
       a.team_id, a.occurred_at
  FROM appended a;

-- event_append_with_job --
-- Append one transition (as event_append): the kind 'new' row is the event, kind 'before' rows what the job was
-- before it (vjm.jobs_before), as of the statement's snapshot. An event committed between that snapshot and the
-- append's head lookup is missing from them; the caller sees the gap in the versions and reads job_get_before.
WITH appended AS MATERIALIZED (
    SELECT * FROM vjm.append_event(:job_id, :trigger, :data, :actor, :expected_version, :attempt, :user_id, :team_id)
)
SELECT 'new' AS kind, a.position, a.xact_id, a.job_id, a.version, a.type, a.from_state, a.to_state, a.attempt,
       a.attempts_left, a.actor, a.user_id, a.team_id, a.occurred_at, NULL::jsonb AS data, NULL::jsonb AS base
  FROM appended a
UNION ALL
SELECT 'before', b.position, b.xact_id, b.job_id, b.version, b.type, b.from_state, b.to_state, b.attempt,
       b.attempts_left, b.actor, b.user_id, b.team_id, b.occurred_at, b.data, b.base
  FROM appended a
 CROSS JOIN LATERAL vjm.jobs_before(ARRAY[a.job_id], ARRAY[a.version]) b;

-- job_get_before --
-- What jobs :job_ids were just before versions :versions: their projected rows and the events since (vjm.jobs_before).
SELECT job_id, base, position, xact_id, version, type, from_state, to_state, attempt, attempts_left, actor,
       user_id, team_id, occurred_at, data
  FROM vjm.jobs_before(:job_ids::uuid[], :versions::int[]);

-- event_find_page --
-- Audit search, keyset by position: events after :after_position matching the optional filters, oldest first.
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at, data
  FROM vjm.job_events
 WHERE position > :after_position
   AND (:actor::text IS NULL OR actor = :actor)
   AND (:type::text IS NULL OR type = :type)
   AND (:since::timestamptz IS NULL OR occurred_at >= :since)
   AND (:until::timestamptz IS NULL OR occurred_at < :until)
   AND (:user_id::text IS NULL OR user_id = :user_id)
   AND (:team_id::uuid IS NULL OR team_id = :team_id)
   AND (:job_id::uuid IS NULL OR job_id = :job_id)
 ORDER BY position
 LIMIT :limit;

-- event_get_stream_until --
-- One job's events that happened at or before an instant, in version order (for as-of reads).
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at, data
  FROM vjm.job_events
 WHERE job_id = :job_id AND occurred_at <= :at
 ORDER BY version;

-- event_verify_chain --
-- Recompute every hash and link (:job_id: one job, or all): how many were checked, and the first broken event.
WITH checked AS (
    SELECT e.job_id, e.version, e.position,
           e.hash = vjm.event_hash(e.prev_hash, e.job_id, e.version, e.type, e.from_state, e.to_state,
                                   e.attempt, e.data, e.actor, e.user_id, e.team_id, e.occurred_at) AS hash_ok,
           e.prev_hash IS NOT DISTINCT FROM lag(e.hash) OVER w AS link_ok,
           e.version = row_number() OVER w AS version_ok
      FROM vjm.job_events e
     WHERE :job_id::uuid IS NULL OR e.job_id = :job_id
    WINDOW w AS (PARTITION BY e.job_id ORDER BY e.version)
)
SELECT (SELECT count(*) FROM checked) AS checked, b.job_id, b.version, b.position,
       b.hash_ok, b.link_ok, b.version_ok
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (
        SELECT * FROM checked c WHERE NOT (c.hash_ok AND c.link_ok AND c.version_ok)
         ORDER BY c.position LIMIT 1) AS b ON true;

-- event_get_last_cursor --
-- The (xact_id, position) of the newest event, for waiting until the projection has caught up with it.
SELECT xact_id, position FROM vjm.job_events ORDER BY xact_id DESC, position DESC LIMIT 1;

-- job_queue_diff --
-- The run queue against the log (for verify): an entry for every job that is not deleted, queued exactly when its
-- head is and processing exactly when its head is, with its create time, current platform, priority and attempt
-- budget; a queued entry with the "not before" its stay set last (vjm.queued_not_before, as vjm.claim_wait_list reads
-- it), held back while that time is ahead and not when there is none (a claim releases a due one: either is right).
-- At most :limit differences; live/replay as JSON.
WITH heads AS (
    SELECT DISTINCT ON (e.job_id) e.job_id, e.to_state FROM vjm.job_events e ORDER BY e.job_id, e.version DESC
), expected AS (
    SELECT h.job_id, c.occurred_at AS created_at, c.attempts_left AS max_attempts, h.to_state = 'queued' AS queued,
           h.to_state = 'processing' AS processing,
           (SELECT p.data ->> 'platform_target' FROM vjm.job_events p
             WHERE p.job_id = h.job_id AND p.type IN ('create', 'update_metadata') AND p.data ? 'platform_target'
             ORDER BY p.version DESC LIMIT 1) AS platform_target,
           coalesce((SELECT (p.data ->> 'priority')::smallint FROM vjm.job_events p
                      WHERE p.job_id = h.job_id AND p.type IN ('create', 'reschedule') AND p.data ? 'priority'
                      ORDER BY p.version DESC LIMIT 1), 0) AS priority,
           CASE WHEN h.to_state = 'queued' THEN
               (SELECT x.not_before
                  FROM (SELECT e.version, CASE WHEN e.type = 'create' THEN (e.data ->> 'run_at')::timestamptz
                                               ELSE vjm.queued_not_before(e.type, e.from_state, e.occurred_at, e.data,
                                                                          NULL) END AS not_before
                          FROM vjm.job_events e
                         WHERE e.job_id = h.job_id
                           AND e.version >= (SELECT max(s.version) FROM vjm.job_events s  -- this stay's entry
                                              WHERE s.job_id = h.job_id AND s.from_state IS DISTINCT FROM 'queued')) x
                 WHERE x.not_before IS NOT NULL
                 ORDER BY x.version DESC LIMIT 1) END AS not_before
      FROM heads h JOIN vjm.job_events c ON c.job_id = h.job_id AND c.version = 1
     WHERE h.to_state <> 'deleted'
), judged AS (
    SELECT q.job_id, q.created_at, q.queued, q.processing, q.platform_target, q.priority, q.max_attempts,
           CASE WHEN q.queued THEN q.not_before END AS not_before, q.queued AND q.held AS held
      FROM vjm.run_queue q
)
SELECT coalesce(q.job_id, x.job_id)::text AS key,
       CASE WHEN q.job_id IS NULL THEN 'missing' WHEN x.job_id IS NULL THEN 'extra' ELSE 'different' END AS kind,
       CASE WHEN q.job_id IS NOT NULL THEN jsonb_build_object('created_at', q.created_at, 'queued', q.queued,
                                                              'processing', q.processing,
                                                              'platform_target', q.platform_target,
                                                              'priority', q.priority,
                                                              'max_attempts', q.max_attempts,
                                                              'not_before', q.not_before, 'held', q.held) END AS live,
       CASE WHEN x.job_id IS NOT NULL THEN jsonb_build_object('created_at', x.created_at, 'queued', x.queued,
                                                              'processing', x.processing,
                                                              'platform_target', x.platform_target,
                                                              'priority', x.priority,
                                                              'max_attempts', x.max_attempts,
                                                              'not_before', x.not_before, 'held', x.held) END AS replay
  FROM judged q
  FULL JOIN expected x0 ON x0.job_id = q.job_id
 CROSS JOIN LATERAL (SELECT x0.*, CASE WHEN x0.not_before IS NULL THEN false WHEN x0.not_before > now() THEN true
                                      ELSE q.held END AS held) x
 WHERE q.job_id IS NULL OR x.job_id IS NULL
    OR (q.created_at, q.queued, q.processing, q.platform_target, q.priority, q.max_attempts, q.not_before, q.held)
       IS DISTINCT FROM (x.created_at, x.queued, x.processing, x.platform_target, x.priority, x.max_attempts,
                         x.not_before, x.held)
 ORDER BY 1
 LIMIT :limit;

-- idempotency_key_diff --
-- The idempotency keys against the log (for verify): a row names the newest create that carries its owner and key,
-- and a key whose newest create is younger than the window (less a second) has its row. At most :limit; JSON.
WITH newest AS (
    SELECT DISTINCT ON (e.user_id, e.data ->> 'idempotency_key')
           e.user_id, e.data ->> 'idempotency_key' AS key, e.job_id, e.occurred_at
      FROM vjm.job_events e
     WHERE e.type = 'create' AND e.data ? 'idempotency_key'
     ORDER BY e.user_id, e.data ->> 'idempotency_key', e.position DESC
)
SELECT coalesce(k.user_id, x.user_id) || ':' || coalesce(k.key, x.key) AS key,
       CASE WHEN k.user_id IS NULL THEN 'missing' WHEN x.user_id IS NULL THEN 'extra' ELSE 'different' END AS kind,
       CASE WHEN k.user_id IS NOT NULL THEN jsonb_build_object('job_id', k.job_id) END AS live,
       CASE WHEN x.user_id IS NOT NULL THEN jsonb_build_object('job_id', x.job_id) END AS replay
  FROM vjm.idempotency_keys k
  FULL JOIN newest x ON x.user_id = k.user_id AND x.key = k.key
 WHERE CASE WHEN k.user_id IS NULL
            THEN x.occurred_at > clock_timestamp() - (SELECT s.key_window FROM vjm.idempotency_settings s)
                                 + interval '1 second'
            ELSE x.job_id IS DISTINCT FROM k.job_id END
 ORDER BY 1
 LIMIT :limit;
