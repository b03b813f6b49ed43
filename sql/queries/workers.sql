-- Named queries of the worker runtime's leases (sql/schema/065_workers.sql).

-- lease_renew_many --
-- Renew worker :worker_id's leases (job, attempt, seconds each); the rows are the leases it still holds.
SELECT job_id, attempt, expires_at
  FROM vjm.renew_leases(:worker_id, :job_ids::uuid[], :attempts::int[], :seconds::float8[]);

-- lease_expire_many --
-- Time out up to :limit jobs whose lease ran out, as :actor; to_state NULL: the lease was stale.
SELECT job_id, attempt, to_state FROM vjm.expire_leases(:limit, :actor);
