-- Named queries. Each block is headed `-- name --` plus one line of description; parameters are `:names`.
-- store/queries.py runs them by name with keyword arguments; no SQL strings live in Python logic.

-- event_append --
-- Append one transition through the guard (vjm.append_event); one round trip.
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at
  FROM vjm.append_event(:job_id, :trigger, :data, :actor, :expected_version, :attempt, :user_id, :team_id);

-- event_append_as_user --
-- Append one transition as the end user whose signed token is :token, in one round trip: role, token and
-- append in one statement (vjm_entry.append_event), sent outside a transaction block so that the identity
-- ends with it; lock waits end after :lock_timeout_ms when it is not null.
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at
  FROM vjm_entry.append_event(:token, :lock_timeout_ms, :job_id, :trigger, :data, :actor, :expected_version, :attempt,
                              :user_id, :team_id);

-- transaction_lock_timeout_set --
-- Lock waits of the rest of this transaction end after :milliseconds (SET LOCAL lock_timeout): a keyed create
-- then refuses (VJ425) rather than wait long for another request with the same idempotency key.
SELECT set_config('lock_timeout', (:milliseconds::integer)::text || 'ms', true);

-- event_append_creates --
-- Append many create events in one statement (one round trip), e.g. a bulk create. The payloads
-- are one JSON array (text: the pool's jsonb codec would encode it once more); back come only
-- the columns the database decides, in the order sent.
SELECT position, xact_id, job_id, attempts_left, actor, occurred_at
  FROM vjm.append_create_batch(:job_ids::uuid[], :payloads_json::text::jsonb, :actors::text[], :user_ids::text[],
                               :team_ids::uuid[]);

-- event_append_creates_as_user --
-- event_append_creates as the end user whose signed token is :token, in one statement (vjm_entry.append_create_batch,
-- sent outside a transaction block so that the identity ends with it): one user's combined creates.
SELECT position, xact_id, job_id, attempts_left, actor, occurred_at
  FROM vjm_entry.append_create_batch(:token, :job_ids::uuid[], :payloads_json::text::jsonb, :actors::text[],
                                     :user_ids::text[], :team_ids::uuid[]);

-- event_get_stream --
-- One job's events in version order.
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at, data
  FROM vjm.job_events
 WHERE job_id = :job_id
 ORDER BY version;

-- event_get_head --
-- The latest event of one job.
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at, data
  FROM vjm.job_events
 WHERE job_id = :job_id
 ORDER BY version DESC
 LIMIT 1;

-- event_get_after --
-- Events after a (xact_id, position) cursor in commit-safe order: only transactions below this
-- database's horizon (vjm.projection_horizon), which have all finished, so nothing that commits
-- later can sort earlier.
SELECT position, xact_id, job_id, version, type, from_state, to_state, attempt, attempts_left,
       actor, user_id, team_id, occurred_at, data
  FROM vjm.job_events
 WHERE (xact_id, position) > (:after_xact_id::xid8, :after_position::bigint)
   AND xact_id < (SELECT vjm.projection_horizon())  -- by the executor, once: not planned per call
 ORDER BY xact_id, position
 LIMIT :limit;

-- transition_get_all --
-- The transition table as stored in the database.
SELECT trigger, from_state, to_state, guard FROM vjm.transitions ORDER BY trigger, from_state, to_state;
