-- Named queries for what the projector cannot apply: voids and the recorded stop
-- (store/faults.py). Same format as events.sql: `-- name --`, one line of description, the statement.

-- void_targets_of_jobs --
-- The events an admin voided among these jobs: (position, job_id, type) of each (the voids' partial index).
SELECT t.position, t.job_id, t.type
  FROM vjm.job_events v
  JOIN vjm.job_events t ON t.job_id = v.job_id AND t.version < v.version
       AND t.position = CASE WHEN v.data ->> 'position' ~ '^[0-9]{1,18}$' THEN (v.data ->> 'position')::bigint END
 WHERE v.type = 'void' AND v.job_id = ANY (:job_ids::uuid[]);

-- void_targets_all --
-- Every event an admin voided: (position, job_id, type) of each (rebuild and verify).
SELECT t.position, t.job_id, t.type
  FROM vjm.job_events v
  JOIN vjm.job_events t ON t.job_id = v.job_id AND t.version < v.version
       AND t.position = CASE WHEN v.data ->> 'position' ~ '^[0-9]{1,18}$' THEN (v.data ->> 'position')::bigint END
 WHERE v.type = 'void';

-- projector_fault_record --
-- The projector stops at an event it cannot apply: record it (first_seen kept while it is the same event); true when new.
WITH old AS (SELECT c.fault_position FROM vjm.projection_checkpoints c WHERE c.name = :name)
UPDATE vjm.projection_checkpoints c
   SET fault_position = :position, fault_job_id = :job_id, fault_version = :version, fault_type = :type, fault_error = :error,
       fault_since = CASE WHEN c.fault_position IS NOT DISTINCT FROM :position THEN c.fault_since ELSE now() END,
       fault_attempts = CASE WHEN c.fault_position IS NOT DISTINCT FROM :position THEN c.fault_attempts + 1 ELSE 1 END,
       fault_checked_at = now()
  FROM old
 WHERE c.name = :name
RETURNING old.fault_position IS DISTINCT FROM :position AS new_fault, c.fault_since, c.fault_attempts;

-- projector_fault_clear --
-- The checkpoint has passed the recorded event (applied, or voided): clear the stop; returns what it was.
WITH old AS (
    SELECT c.name, c.fault_position, c.fault_job_id, c.fault_since FROM vjm.projection_checkpoints c
     WHERE c.name = :name AND c.fault_position IS NOT NULL
       AND EXISTS (SELECT 1 FROM vjm.job_events e
                    WHERE e.position = c.fault_position AND (e.xact_id, e.position) <= (c.xact_id, c.position))
)
UPDATE vjm.projection_checkpoints c
   SET fault_position = NULL, fault_job_id = NULL, fault_version = NULL, fault_type = NULL, fault_error = NULL,
       fault_since = NULL, fault_checked_at = NULL, fault_attempts = 0
  FROM old
 WHERE c.name = old.name
RETURNING old.fault_position AS position, old.fault_job_id AS job_id, old.fault_since AS since,
          EXISTS (SELECT 1 FROM vjm.job_events v WHERE v.type = 'void' AND v.job_id = old.fault_job_id
                     AND v.data ->> 'position' = old.fault_position::text) AS voided;

-- projector_fault_get --
-- Where a projector is stopped, if it is: the event, its job, the error, since when, how often retried.
SELECT c.name, c.fault_position AS position, c.fault_job_id AS job_id, c.fault_version AS version,
       c.fault_type AS type, c.fault_error AS error, c.fault_since AS since, c.fault_checked_at AS checked_at,
       c.fault_attempts AS attempts
  FROM vjm.projection_checkpoints c
 WHERE c.name = :name AND c.fault_position IS NOT NULL;

-- event_void --
-- An admin voids the event at a position (vjm.void_event): the stored void event.
SELECT * FROM vjm.void_event(:position, :reason);
