-- Claim latency: how long jobs waited in the run queue before a worker claimed them, read from
-- the log (issue 19). Nothing is kept for it: a statistic over a time window of start events.
--
--   vjm.claim_wait_list  each start since p_since: its platform, when the job became claimable
--                        for that attempt, and how many seconds it waited      (users, services)
--   vjm.claim_waits      per platform: claims, p50, p95 and max of those waits (users, services)
--
-- Both are SECURITY INVOKER: they read vjm.job_events as the caller, so Row Level Security
-- limits an end user to their own and their teams' jobs, as every read of the log does.
SET LOCAL ROLE vjm_owner;

-- A time window of the log, cheaply: events are appended with clock_timestamp(), so the heap is
-- in (nearly) occurred_at order and a block range index finds a recent window's blocks without
-- a B-tree over every event. autosummarize: autovacuum summarises each range as it fills (an
-- unsummarised range is read whole: correct, only slower).
CREATE INDEX job_events_occurred_at ON vjm.job_events USING brin (occurred_at) WITH (autosummarize = on);

-- The wait of a start event: its occurred_at less the moment the job became claimable for that
-- attempt, the later of
--   (a) when it entered the queue for this stay: the latest earlier event of the job that did
--       not come from 'queued' (its create, a retry, a time_out, requeue or release; every
--       event between that one and the start stays in 'queued');
--   (b) the last "not before" set during the stay, as the run queue kept it (060_write_api.sql,
--       vjm.queued_not_before): a create's run_at, a requeue's retry_after, a reschedule's run_at;
--       the latest event of the stay that sets one wins.
-- A start fired by hand before that moment (start_processing ignores run_at) waited 0 seconds.
-- The platform is the one the claim matched: the newest create or update_metadata before the
-- start that names one (the run queue's platform_target then).
CREATE FUNCTION vjm.claim_wait_list(p_since timestamptz, p_user_id text DEFAULT NULL, p_team_id uuid DEFAULT NULL)
RETURNS TABLE (job_id uuid, version integer, platform_target text, claimable_at timestamptz,
               started_at timestamptz, wait_seconds double precision)
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT s.job_id, s.version, p.platform_target, greatest(entry.occurred_at, nb.not_before), s.occurred_at,
           greatest(extract(epoch FROM s.occurred_at - greatest(entry.occurred_at, nb.not_before)), 0)::float8
      FROM vjm.job_events s
     CROSS JOIN LATERAL (
            SELECT e.version, e.occurred_at FROM vjm.job_events e
             WHERE e.job_id = s.job_id AND e.version < s.version AND e.from_state IS DISTINCT FROM 'queued'
             ORDER BY e.version DESC LIMIT 1) entry
      LEFT JOIN LATERAL (
            SELECT x.not_before
              FROM (SELECT e.version, CASE WHEN e.type = 'create' THEN (e.data ->> 'run_at')::timestamptz
                                           ELSE vjm.queued_not_before(e.type, e.from_state, e.occurred_at, e.data,
                                                                      NULL) END AS not_before
                      FROM vjm.job_events e
                     WHERE e.job_id = s.job_id AND e.version >= entry.version AND e.version < s.version) x
             WHERE x.not_before IS NOT NULL
             ORDER BY x.version DESC LIMIT 1) nb ON true
      LEFT JOIN LATERAL (
            SELECT e.data ->> 'platform_target' AS platform_target FROM vjm.job_events e
             WHERE e.job_id = s.job_id AND e.version < s.version AND e.type IN ('create', 'update_metadata')
               AND e.data ->> 'platform_target' IS NOT NULL
             ORDER BY e.version DESC LIMIT 1) p ON true
     WHERE s.type = 'start' AND s.occurred_at >= p_since
       AND (p_user_id IS NULL OR s.user_id = p_user_id)
       AND (p_team_id IS NULL OR s.team_id = p_team_id)
$$;

-- Claim latency per platform over the starts since p_since (of one owner or one team when
-- named): how many, and the exact median, 95th percentile (percentile_cont: interpolated
-- between the two nearest waits) and longest wait, in seconds. One row per platform, by name.
CREATE FUNCTION vjm.claim_waits(p_since timestamptz, p_user_id text DEFAULT NULL, p_team_id uuid DEFAULT NULL)
RETURNS TABLE (platform_target text, claims bigint, p50_seconds double precision, p95_seconds double precision,
               max_seconds double precision)
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT w.platform_target, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY w.wait_seconds),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY w.wait_seconds), max(w.wait_seconds)
      FROM vjm.claim_wait_list(p_since, p_user_id, p_team_id) w
     GROUP BY w.platform_target
     ORDER BY w.platform_target
$$;

-- Whoever reads the log may ask (RLS decides which starts they see). vjm.queued_not_before is
-- evaluated as the caller, so they may call it too; and verify (the projector's role) reads the
-- run queue's "not before" from the log with it (the job_queue_diff query).
GRANT EXECUTE ON FUNCTION vjm.queued_not_before(text, text, timestamptz, jsonb, timestamptz),
    vjm.claim_wait_list(timestamptz, text, uuid), vjm.claim_waits(timestamptz, text, uuid)
    TO vjm_authenticated, vjm_processor, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.queued_not_before(text, text, timestamptz, jsonb, timestamptz) TO vjm_projector;
