-- Named queries of the worker runtime's leases (sql/schema/065_workers.sql).

-- lease_renew_many --
-- Renew worker :worker_id's leases (job, attempt, seconds each); the rows are the leases it still holds.
SELECT job_id, attempt, expires_at
  FROM vjm.renew_leases(:worker_id, :job_ids::uuid[], :attempts::int[], :seconds::float8[]);

-- lease_expire_many --
-- Time out up to :limit jobs whose lease ran out, as :actor; to_state NULL: the lease was stale.
SELECT job_id, attempt, to_state FROM vjm.expire_leases(:limit, :actor);

-- worker_beat --
-- Worker :worker_id is alive (or, with :stopped, stopped gracefully): upsert its registry row.
SELECT vjm.worker_beat(:worker_id, :host, :pid, :concurrency, :running, :platforms::text[], :version,
                       :lease_seconds::float8, :stopped);

-- worker_list --
-- Every registered worker with its state (running, stopped, lost), the live ones first, newest first.
SELECT worker_id, host, pid, started_at, last_seen_at, concurrency, running, platforms, version, lease_seconds,
       stopped_at, state
  FROM vjm.worker_status
 ORDER BY state = 'running' DESC, last_seen_at DESC
 LIMIT :limit;

-- next_claimable_in --
-- Seconds until the earliest queued job of the :platforms (NULL: any) held back by its not_before may be
-- claimed; NULL when none is held back.
SELECT vjm.next_claimable_in(:platforms::text[]) AS seconds;

-- queue_depth --
-- The run queue by platform and priority: jobs queued, those claimable now (no not_before ahead), and how long
-- the oldest claimable one has waited (since its create, or since its not_before passed, whichever is later).
SELECT platform_target, priority, count(*) AS queued,
       count(*) FILTER (WHERE not_before IS NULL OR not_before <= now()) AS claimable,
       coalesce(extract(epoch FROM now() - min(greatest(created_at, not_before))
                FILTER (WHERE not_before IS NULL OR not_before <= now())), 0)::float8 AS oldest_claimable_seconds
  FROM vjm.run_queue
 WHERE queued
 GROUP BY platform_target, priority
 ORDER BY platform_target, priority;
