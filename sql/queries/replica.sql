-- Named queries of read replicas (store/replica.py): how far a streaming standby has replayed.
-- Same format as events.sql: `-- name --`, one line of description, the statement.
-- WAL positions are bytes from 0/0 (a pg_lsn minus '0/0'), so Python compares integers.

-- replica_primary_wal --
-- The primary's WAL position, read after a write has returned: flushed (its commit record is, unless commits are asynchronous) or inserted (at or past it always).
SELECT (CASE WHEN :flushed THEN pg_current_wal_flush_lsn() ELSE pg_current_wal_insert_lsn() END - '0/0'::pg_lsn)::bigint;

-- replica_commits_flushed --
-- Whether this session's commits return only once flushed (synchronous_commit is not off).
SELECT current_setting('synchronous_commit') <> 'off';

-- replica_position --
-- How far this server is: the WAL it has replayed (not in recovery: all it has flushed), its projector checkpoint as replayed, whether it is a standby.
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END
        - '0/0'::pg_lsn)::bigint AS replayed,
       c.xact_id, c.position, pg_is_in_recovery() AS in_recovery
FROM (SELECT 1) AS one LEFT JOIN vjm.projection_checkpoints AS c ON c.name = :name;
