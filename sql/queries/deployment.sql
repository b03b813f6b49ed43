-- Named queries of `vjm status`: who leads each projector, its candidates, and the sessions on the database.
-- Same format as events.sql: `-- name --`, one line of description, the statement.

-- deployment_leader --
-- The projector's lease with what its holder said of itself (process, application_name, client address).
SELECT l.name, l.holder_pid, l.holder_process, l.holder_application_name, host(l.holder_client_addr) AS holder_client_addr,
       l.holder_client_port, l.acquired_at, l.renewed_at, l.expires_at, vjm.projector_lease_live(l) AS live,
       clock_timestamp() AS now
  FROM vjm.projector_leases l
 WHERE l.name = :name;

-- deployment_candidates --
-- The projector's candidates whose session is still connected, the one that holds the live lease first.
SELECT c.backend_pid, c.process, c.application_name, host(c.client_addr) AS client_addr, c.client_port, c.seen_at,
       extract(epoch FROM clock_timestamp() - c.seen_at)::float8 AS seen_seconds_ago,
       coalesce(l.holder_pid = c.backend_pid AND vjm.projector_lease_live(l), false) AS leads
  FROM vjm.projector_candidates c
  LEFT JOIN vjm.projector_leases l ON l.name = c.name
 WHERE c.name = :name AND vjm.backend_live(c.backend_pid, c.login, c.server_started)
 ORDER BY leads DESC, c.process, c.backend_pid;

-- deployment_sessions --
-- The client sessions on this database by application_name (name and pid are what every role may see of every session).
SELECT a.application_name, count(*) AS sessions, array_agg(a.pid ORDER BY a.pid) AS pids
  FROM pg_stat_activity a
 WHERE a.datname = current_database() AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)
 GROUP BY 1
 ORDER BY 1;
