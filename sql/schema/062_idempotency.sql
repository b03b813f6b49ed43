-- Idempotent creates. A create whose payload carries an `idempotency_key` (a payload key:
-- payload_rules.sql, 1-200 visible ASCII characters) makes at most one job per owner and key
-- within a window (vjm.idempotency_settings, 24 hours unless changed): the same key again, with
-- the same request, answers with that job's create event and writes nothing; with a different
-- request it is refused (VJ424). The owner is the job's user_id, so one user's key never
-- meets another's: an end user creates for themselves only (vjm.may_create), and a request
-- the guard would refuse is refused before any key is looked at.
--
-- vjm.guard_append asks vjm.take_idempotency_keys for a batch that carries a key (one
-- jsonb_path_exists for one without) and creates what it leaves; transitions never come here.
--
-- Refusals, as SQLSTATEs (store/errors.py):
--   VJ424 the key was used for a different request (IdempotencyConflict)
--   VJ425 another transaction holds the key and the caller's lock_timeout ran out first
--         (IdempotencyKeyInUse); without a lock_timeout a create waits for it
SET LOCAL ROLE vjm_owner;

-- How long a key binds: one row. The owner changes it:
--   UPDATE vjm.idempotency_settings SET key_window = interval '1 hour';
CREATE TABLE vjm.idempotency_settings (
    one        boolean  PRIMARY KEY DEFAULT true CHECK (one),
    key_window interval NOT NULL CHECK (key_window BETWEEN interval '1 second' AND interval '366 days')
);
INSERT INTO vjm.idempotency_settings (key_window) VALUES (interval '24 hours');

-- The keys that bind: one row per owner and key, naming the job it made. Part of the write
-- model, like the run queue: the guard writes it in the create's transaction, and `vjm
-- projections verify` compares it with the log. Its primary key is what makes concurrent creates
-- with one key make one job: the second inserter waits for the first to commit, then finds
-- its row. A row older than the window binds no more: the next create with that key takes it
-- over (a new job), and keyed creates delete a few such rows as they go.
CREATE TABLE vjm.idempotency_keys (
    user_id  text        NOT NULL,
    key      text        NOT NULL,
    job_id   uuid        NOT NULL,
    taken_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_taken ON vjm.idempotency_keys (taken_at);

-- A create's request as a key compares it: its payload with the defaults of the keys it may leave
-- out, the ones statemachine/payload_rules.py fills in (FieldRule.default; a test holds the two
-- equal), so that a SQL caller that leaves them out and one that names them send the same request.
CREATE FUNCTION vjm.create_request(p_data jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object('max_attempts', vjm.default_max_attempts(), 'priority', 0) || p_data
$$;

-- Raise the first refusal the guard would give the batch (vjm.decide_create), before any key is
-- taken or replayed: a request that may not be made neither locks a key nor learns of a job.
-- `p_who` is the service principal, as in vjm.guard_append.
CREATE FUNCTION vjm.refuse_creates(
    p_job_ids uuid[], p_data jsonb, p_actors text[], p_user_ids text[], p_team_ids uuid[], p_trusted boolean,
    p_caller text, p_teams uuid[], p_who text
) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r record;
BEGIN
    SELECT x.* INTO r
      FROM ROWS FROM (unnest(p_job_ids), jsonb_array_elements(p_data), unnest(p_actors), unnest(p_user_ids),
                      unnest(p_team_ids)) WITH ORDINALITY AS i(job_id, data, actor, user_id, team_id, item)
     CROSS JOIN LATERAL vjm.decide_create(i.job_id, i.data, CASE WHEN p_trusted THEN coalesce(i.actor, p_caller, p_who)
                                                                 ELSE p_caller END,
                                          i.user_id, i.team_id, now(), p_caller, p_teams) d
     CROSS JOIN LATERAL vjm.refusal_error(d.refusal, i.job_id, 'create', i.user_id, i.team_id, NULL, NULL, NULL, NULL,
                                          NULL) x
     WHERE d.refusal IS NOT NULL
     ORDER BY i.item LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = r.code, MESSAGE = r.message, DETAIL = coalesce(r.detail, ''),
                              HINT = coalesce(r.hint, '');
    END IF;
END
$$;

-- A batch of creates (ids issued, see vjm.guard_append) that carries idempotency keys: judges it
-- (vjm.refuse_creates), takes each owner's key for its first item, and returns per item the job it
-- stands for (`bound`; NULL when every item is created) and the items still to create, in item order. An item whose key is taken
-- already, within the window, stands for that key's job, and so does a later item of the batch
-- with the same owner and key; each must be the same request (vjm.create_request, and the team) as
-- the one that made the job, else VJ424. Keys are inserted in (owner, key) order, so two batches that share
-- keys wait for each other instead of deadlocking. A key another transaction holds is waited
-- for (its create commits: a replay; it rolls back: taken here), at most lock_timeout (VJ425).
CREATE FUNCTION vjm.take_idempotency_keys(
    p_job_ids uuid[], p_data jsonb, p_actors text[], p_user_ids text[], p_team_ids uuid[], p_trusted boolean,
    p_caller text, p_teams uuid[], p_who text
) RETURNS TABLE (bound uuid[], new_job_ids uuid[], new_data jsonb, new_actors text[], new_user_ids text[],
                 new_team_ids uuid[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- The clock, not the transaction's start: a key binds from when it was taken (its create follows at once).
    cutoff constant timestamptz := clock_timestamp() - (SELECT s.key_window FROM vjm.idempotency_settings s);
    keys text[];       -- per item: its key, NULL without one
    firsts integer[];  -- per item: the first item with its owner and key (itself, or NULL without a key)
    repeated boolean;  -- an owner's key is on more than one item
    ids uuid[];        -- per item: the job it stands for
    k integer;
    r record;
BEGIN
    PERFORM vjm.refuse_creates(p_job_ids, p_data, p_actors, p_user_ids, p_team_ids, p_trusted, p_caller, p_teams,
                               p_who);
    SELECT array_agg(i.key ORDER BY i.n), array_agg(CASE WHEN i.key IS NOT NULL THEN i.first END ORDER BY i.n),
           coalesce(bool_or(i.key IS NOT NULL AND i.first < i.n), false)
      INTO keys, firsts, repeated
      FROM (SELECT e.value ->> 'idempotency_key' AS key, e.n,
                   min(e.n) OVER (PARTITION BY p_user_ids[e.n], e.value ->> 'idempotency_key') AS first
              FROM jsonb_array_elements(p_data) WITH ORDINALITY AS e(value, n)) i;
    IF repeated THEN  -- a later item with the same owner and key must be the same request as the first
        SELECT i.n, keys[i.n] AS key INTO r FROM generate_subscripts(firsts, 1) AS i(n)
         WHERE firsts[i.n] < i.n
           AND (vjm.create_request(p_data -> (i.n - 1)::integer)
                    IS DISTINCT FROM vjm.create_request(p_data -> (firsts[i.n] - 1)::integer)
                OR p_team_ids[i.n] IS DISTINCT FROM p_team_ids[firsts[i.n]])
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'idempotency key % of user % is used twice in this call, for different requests',
                            r.key, p_user_ids[r.n] USING ERRCODE = 'VJ424';
        END IF;
    END IF;
    BEGIN  -- a subtransaction, so that running out of lock_timeout here is told apart
        -- A key that binds is updated to itself (not skipped), so that RETURNING names its job too.
        WITH taken AS (
            INSERT INTO vjm.idempotency_keys AS k (user_id, key, job_id, taken_at)
            SELECT p_user_ids[i.n], keys[i.n], p_job_ids[i.n], clock_timestamp()
              FROM generate_subscripts(firsts, 1) AS i(n)
             WHERE firsts[i.n] = i.n
             ORDER BY p_user_ids[i.n], keys[i.n]
            ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
               SET job_id = CASE WHEN k.taken_at <= cutoff THEN excluded.job_id ELSE k.job_id END,
                   taken_at = CASE WHEN k.taken_at <= cutoff THEN excluded.taken_at ELSE k.taken_at END
            RETURNING k.user_id, k.key, k.job_id
        )
        SELECT array_agg(coalesce(t.job_id, p_job_ids[i.n]) ORDER BY i.n) INTO ids
          FROM generate_subscripts(firsts, 1) AS i(n)
          LEFT JOIN taken t ON t.user_id = p_user_ids[i.n] AND t.key = keys[i.n];
    EXCEPTION WHEN lock_not_available THEN
        k := (SELECT i FROM generate_subscripts(firsts, 1) AS i WHERE firsts[i] = i LIMIT 1);
        RAISE EXCEPTION 'another request with idempotency key % of user % is in progress', keys[k],
                        p_user_ids[k] USING ERRCODE = 'VJ425', HINT = 'send it again when that request has ended';
    END;
    DELETE FROM vjm.idempotency_keys k  -- a few keys that bind no more, oldest first
     WHERE (k.user_id, k.key) IN (SELECT o.user_id, o.key FROM vjm.idempotency_keys o WHERE o.taken_at <= cutoff
                                   ORDER BY o.taken_at LIMIT 16 + cardinality(ids) FOR UPDATE SKIP LOCKED);
    IF ids = p_job_ids THEN  -- every key taken here, none repeated: all is created, as it came
        RETURN QUERY SELECT NULL::uuid[], p_job_ids, p_data, p_actors, p_user_ids, p_team_ids;
        RETURN;
    END IF;
    -- A key that named a job already: the request must be the one that made it.
    SELECT i.n, e.job_id INTO r
      FROM generate_subscripts(firsts, 1) AS i(n)
      JOIN vjm.job_events e ON e.job_id = ids[i.n] AND e.version = 1
     WHERE firsts[i.n] = i.n AND ids[i.n] <> p_job_ids[i.n]
       AND (vjm.create_request(e.data) IS DISTINCT FROM vjm.create_request(p_data -> (i.n - 1)::integer)
            OR e.team_id IS DISTINCT FROM p_team_ids[i.n])
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'idempotency key % of user % was used for a different request (job %)', keys[r.n],
                        p_user_ids[r.n], r.job_id USING ERRCODE = 'VJ424', DETAIL = r.job_id::text;
    END IF;
    RETURN QUERY
    SELECT ids, coalesce(array_agg(p_job_ids[i.n] ORDER BY i.n), '{}'),
           coalesce(jsonb_agg(p_data -> (i.n - 1)::integer ORDER BY i.n), '[]'),
           coalesce(array_agg(p_actors[i.n] ORDER BY i.n), '{}'),
           coalesce(array_agg(p_user_ids[i.n] ORDER BY i.n), '{}'),
           coalesce(array_agg(p_team_ids[i.n] ORDER BY i.n), '{}')
      FROM generate_subscripts(firsts, 1) AS i(n)
     WHERE ids[i.n] = p_job_ids[i.n];  -- the items without a key, and those that took theirs
END
$$;

-- The create events of the given jobs, in the order given (a job named twice: twice), as the
-- guard returns appended events.
CREATE FUNCTION vjm.create_events_of(p_job_ids uuid[]) RETURNS vjm.appended[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(ROW(e.position, e.xact_id, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt,
                         e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at, e.prev_hash, e.hash,
                         e.data ->> 'platform_target')::vjm.appended ORDER BY i.n)
      FROM unnest(p_job_ids) WITH ORDINALITY AS i(job_id, n)
      JOIN vjm.job_events e ON e.job_id = i.job_id AND e.version = 1
$$;
