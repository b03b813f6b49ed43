-- The worker runtime's operational state (videojobs.Worker): leases on the jobs it runs.
--
-- A lease is a deadline, not history: the runtime renews it in place (vjm.renew_leases) about
-- every third of its length, so 10,000 running jobs write 10,000 small updates, never events.
-- A lease names the attempt it was taken for; once the job has moved on (completed, failed,
-- cancelled, released, re-run) the row is stale and is dropped when it runs out.
--
--   vjm.claim_jobs_leased  vjm.claim_jobs with a lease on every job it starts  (processors; vjm.claim_jobs
--                          takes p_lease_seconds itself)
--   vjm.renew_leases       extend the leases a worker still holds; the reply     (processors)
--                          leaves out the jobs that are no longer its attempt's
--   vjm.expire_leases      time out the jobs whose lease ran out; the time_out   (processors: the
--                          records the lease it saw                               stuck detector)
--   vjm.next_claimable_in  when the earliest held-back queued job may be        (processors)
--                          claimed: how long an idle worker may sleep
--
-- Heartbeat against time-out: vjm.expire_leases deletes the lease row and appends the time_out
-- in one transaction, and only while the lease is still expired when its row is locked; a
-- renewal that commits first keeps the job, one that comes after finds no row and reports the
-- job lost. Lock order, as the guard's: run-queue entries, then leases.
SET LOCAL ROLE vjm_owner;

CREATE TABLE vjm.leases (
    job_id        uuid             PRIMARY KEY,
    attempt       integer          NOT NULL,  -- the attempt it was taken for (the start's)
    worker_id     text             NOT NULL,
    lease_seconds double precision NOT NULL CHECK (lease_seconds BETWEEN 0.5 AND 86400),
    expires_at    timestamptz      NOT NULL,
    renewed_at    timestamptz      NOT NULL
);

CREATE INDEX leases_expiry ON vjm.leases (expires_at);

-- A lease length a caller may ask for.
CREATE FUNCTION vjm.check_lease_seconds(p_seconds double precision) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_seconds IS NULL OR NOT p_seconds BETWEEN 0.5 AND 86400 THEN
        RAISE EXCEPTION 'a lease lasts 0.5 to 86400 seconds, not %', p_seconds USING ERRCODE = '22023';
    END IF;
END
$$;

-- vjm.claim_jobs with a lease of p_lease_seconds on each job it started (none when NULL), as
-- vjm.claim_jobs takes it itself: kept for callers that name it.
CREATE FUNCTION vjm.claim_jobs_leased(p_worker_id text, p_limit integer, p_platforms text[],
                                      p_lease_seconds double precision)
RETURNS SETOF vjm.job_events
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM vjm.claim_jobs(p_worker_id, p_limit, p_platforms, p_lease_seconds)
$$;

-- Seconds until the earliest queued job (of the platforms p_platforms names, or of any platform
-- when NULL: as vjm.claim_jobs reads them) that its not_before holds back may be claimed; NULL
-- when no queued job is held back. An idle worker that found nothing to claim sleeps that long at
-- most, so a backoff's end wakes it without a notice.
CREATE FUNCTION vjm.next_claimable_in(p_platforms text[]) RETURNS double precision
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM vjm.check_platforms(p_platforms);
    RETURN (SELECT greatest(extract(epoch FROM held.until - clock_timestamp()), 0)::double precision
              FROM (SELECT min(q.not_before) AS until FROM vjm.run_queue q
                     WHERE q.queued AND q.held AND q.not_before > now()  -- (held: by run_queue_held_back)
                       AND (p_platforms IS NULL OR q.platform_target = ANY (p_platforms))) held
             WHERE held.until IS NOT NULL);
END
$$;

-- Renew the leases worker p_worker_id holds: each (job, attempt) runs until p_seconds from now,
-- or until the deadline it has when that is later: a renewal never brings a deadline closer. So a
-- renewal sent with a lease's old length that commits after one with a longer length (ctx.extend
-- while a heartbeat is in flight) cannot undo it; a shorter length takes over once the deadline
-- it gives is the later one (lease_seconds is the length of the deadline kept). Returns the
-- leases renewed, with their deadline. A job left out of the reply is no longer this attempt's:
-- timed out (its lease is gone: a lease that ran out is renewed only while vjm.expire_leases has
-- not deleted it, as above), or its head is past the attempt (cancelled, deleted, completed,
-- re-run). The runtime cancels its handler.
CREATE FUNCTION vjm.renew_leases(p_worker_id text, p_job_ids uuid[], p_attempts integer[],
                                 p_seconds double precision[])
RETURNS TABLE (job_id uuid, attempt integer, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n constant integer := coalesce(cardinality(p_job_ids), 0);
BEGIN
    IF NOT vjm.may_fire('progress') THEN
        RAISE EXCEPTION 'not allowed to hold leases' USING ERRCODE = '42501';
    END IF;
    IF n > 10000 OR coalesce(cardinality(p_attempts), 0) <> n OR coalesce(cardinality(p_seconds), 0) <> n THEN
        RAISE EXCEPTION 'up to 10000 leases, with an attempt and a length each' USING ERRCODE = '22023';
    END IF;
    PERFORM vjm.check_lease_seconds(s) FROM unnest(p_seconds) AS s;
    RETURN QUERY
    UPDATE vjm.leases l  -- l is the row as locked: after a concurrent renewal, the deadline it left
       SET expires_at = greatest(l.expires_at, w.until),
           lease_seconds = CASE WHEN w.until >= l.expires_at THEN w.secs ELSE l.lease_seconds END,
           renewed_at = clock_timestamp()
      FROM (SELECT u.id, u.held, u.secs, clock_timestamp() + make_interval(secs => u.secs) AS until
              FROM unnest(p_job_ids, p_attempts, p_seconds) AS u(id, held, secs)) w
     WHERE l.job_id = w.id AND l.attempt = w.held AND l.worker_id = p_worker_id
       AND (SELECT e.to_state = 'processing' AND e.attempt = w.held FROM vjm.job_events e
             WHERE e.job_id = w.id ORDER BY e.version DESC LIMIT 1)
    RETURNING l.job_id, l.attempt, l.expires_at;
END
$$;

-- Time out up to p_limit jobs whose lease ran out, as actor p_actor (the stuck detector). Each
-- time_out names the lease's attempt (a job that moved on refuses it: the lease was stale) and
-- records the lease it saw. Returns each expired lease's job and attempt, and the state the
-- time_out led to (NULL: the lease was stale, nothing was appended).
CREATE FUNCTION vjm.expire_leases(p_limit integer, p_actor text)
RETURNS TABLE (job_id uuid, attempt integer, to_state text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    due uuid[];
    gone vjm.leases[];
    o vjm.outcome;
BEGIN
    IF NOT vjm.may_fire('time_out') THEN
        RAISE EXCEPTION 'not allowed to time out jobs' USING ERRCODE = '42501';
    END IF;
    SELECT array_agg(l.job_id ORDER BY l.job_id) INTO due
      FROM (SELECT l.job_id FROM vjm.leases l WHERE l.expires_at < clock_timestamp()
             ORDER BY l.expires_at LIMIT greatest(p_limit, 1)) l;
    IF due IS NULL THEN
        RETURN;
    END IF;
    -- The guard's lock order: the jobs' queue entries (skipping those a writer holds), then the leases.
    due := ARRAY(SELECT q.job_id FROM vjm.run_queue q WHERE q.job_id = ANY (due) ORDER BY q.job_id
                    FOR UPDATE SKIP LOCKED)
           || ARRAY(SELECT d FROM unnest(due) AS d WHERE NOT EXISTS (SELECT 1 FROM vjm.run_queue q WHERE q.job_id = d));
    WITH expired AS (
        DELETE FROM vjm.leases l WHERE l.job_id = ANY (due) AND l.expires_at < clock_timestamp() RETURNING l.*
    )
    SELECT coalesce(array_agg(x ORDER BY x.job_id), '{}') INTO gone FROM expired x;
    IF cardinality(gone) = 0 THEN
        RETURN;
    END IF;
    o := vjm.guard_append(
        ARRAY(SELECT g.job_id FROM unnest(gone) g), array_fill('time_out'::text, ARRAY[cardinality(gone)]),
        (SELECT jsonb_agg(jsonb_build_object(
                    'reason', format('lease of %s s expired (worker %s sent no heartbeat)', g.lease_seconds, g.worker_id),
                    'lease_expires_at', to_char(g.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    'lease_seconds', g.lease_seconds) ORDER BY g.job_id) FROM unnest(gone) g),
        array_fill(p_actor, ARRAY[cardinality(gone)]), ARRAY(SELECT g.attempt FROM unnest(gone) g),
        array_fill(NULL::integer, ARRAY[cardinality(gone)]), array_fill(NULL::text, ARRAY[cardinality(gone)]),
        array_fill(NULL::uuid, ARRAY[cardinality(gone)]), true, false);
    RETURN QUERY
    SELECT g.job_id, g.attempt, a.to_state FROM unnest(gone) g LEFT JOIN unnest(o.appended) a ON a.job_id = g.job_id;
END
$$;

-- The worker registry: who runs, where, with how many slots, and when it was last heard from.
-- Each worker upserts its own row with every heartbeat round (vjm.worker_beat, in place, no
-- event). A worker that stopped says so; one not heard from for three leases is lost
-- (vjm.worker_status).
CREATE TABLE vjm.workers (
    worker_id     text             PRIMARY KEY,
    host          text             NOT NULL,
    pid           integer          NOT NULL,
    started_at    timestamptz      NOT NULL,
    last_seen_at  timestamptz      NOT NULL,
    concurrency   integer          NOT NULL,
    running       integer          NOT NULL,  -- jobs its handlers run now
    platforms     text[],                     -- NULL: every platform
    version       text             NOT NULL,  -- the vjm it runs
    lease_seconds double precision NOT NULL,
    stopped_at    timestamptz                 -- set by a graceful stop
);

CREATE FUNCTION vjm.worker_beat(p_worker_id text, p_host text, p_pid integer, p_concurrency integer, p_running integer,
                                p_platforms text[], p_version text, p_lease_seconds double precision, p_stopped boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT vjm.may_fire('start') THEN
        RAISE EXCEPTION 'not allowed to register workers' USING ERRCODE = '42501';
    END IF;
    IF length(p_worker_id) NOT BETWEEN 1 AND 128 OR length(p_host) NOT BETWEEN 1 AND 255
       OR length(p_version) NOT BETWEEN 1 AND 64 OR cardinality(p_platforms) > 16 THEN
        RAISE EXCEPTION 'worker id 1-128, host 1-255, version 1-64 characters, at most 16 platforms'
            USING ERRCODE = '22023';
    END IF;
    PERFORM vjm.check_lease_seconds(p_lease_seconds);
    INSERT INTO vjm.workers AS w (worker_id, host, pid, started_at, last_seen_at, concurrency, running, platforms,
                                  version, lease_seconds, stopped_at)
    VALUES (p_worker_id, p_host, p_pid, clock_timestamp(), clock_timestamp(), p_concurrency, p_running, p_platforms,
            p_version, p_lease_seconds, CASE WHEN p_stopped THEN clock_timestamp() END)
    ON CONFLICT (worker_id) DO UPDATE
        SET last_seen_at = clock_timestamp(), concurrency = excluded.concurrency, running = excluded.running,
            platforms = excluded.platforms, lease_seconds = excluded.lease_seconds, stopped_at = excluded.stopped_at;
END
$$;

-- Each worker with its state: stopped (said so), lost (silent for three leases), else running.
CREATE VIEW vjm.worker_status WITH (security_invoker = true) AS
    SELECT w.*, CASE WHEN w.stopped_at IS NOT NULL THEN 'stopped'
                     WHEN w.last_seen_at < now() - make_interval(secs => 3 * w.lease_seconds) THEN 'lost'
                     ELSE 'running' END AS state
      FROM vjm.workers w;
