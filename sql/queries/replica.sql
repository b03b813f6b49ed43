-- Named queries of read replicas (store/replica.py): how far a streaming standby has replayed.
-- Same format as events.sql: `-- name --`, one line of description, the statement.
-- WAL positions are bytes from 0/0 (a pg_lsn minus '0/0'), so Python compares integers.

-- replica_primary_wal --
-- The primary's WAL insert position: read after a write has returned, it is at or past that write's commit record.
SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint;

-- replica_position --
-- How far this server is: the WAL it has replayed (not in recovery: all it has flushed), its projector checkpoint as replayed, whether it is a standby.
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END
        - '0/0'::pg_lsn)::bigint AS replayed,
       c.xact_id, c.position, pg_is_in_recovery() AS in_recovery
FROM (SELECT 1) AS one LEFT JOIN vjm.projection_checkpoints AS c ON c.name = :name;
