-- Advisory locks, each under one name, and the vjm_events doorbell.
SET LOCAL ROLE vjm_owner;

-- The advisory lock keys. Two-integer keys (class, object): pg_locks shows them as
-- classid, objid and objsubid = 2. The migrations runner's lock is the one key that must
-- exist before the schema does: store.migrations.MIGRATION_LOCK_KEY.
CREATE FUNCTION vjm.doorbell_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1986359921 $$;

-- Projector leadership: a lease, one row per projector name, that only vjm_projector (and
-- the owner) may write. Not an advisory lock: any session may take any advisory key, so a
-- session that took the leader's key first kept every projector from projecting.
--
-- The leader is the session whose pid the row names, while that lease is live:
--   * the holder's backend still exists (pg_stat_activity shows every backend's pid,
--     database and login to every role) in the same database, under the same login and
--     since the same server start, so a crashed leader's lease is free at once;
--   * and it renewed the lease before expires_at, so a leader that hangs with its
--     session open (or a pid reused by an unrelated backend) loses it after its ttl.
-- A projector calls vjm.try_lead_projector(name, ttl, process) to take the lease or renew it
-- (every ttl/3); a standby calls it every takeover interval. An apply transaction does not need
-- the lease to be safe: the checkpoint row lock makes two appliers harmless (listeners/batch.py).
--
-- A process killed outright (SIGKILL, OOM) closes its sockets with it; the server ends the
-- backend as soon as it reads the closed socket, so the lease is free within the standby's
-- takeover interval. A host that vanishes (power, network) leaves its backends waiting for TCP
-- keepalive: its lease is free after its ttl.
--
-- Who holds it, for `vjm status`: the holder names its process (`host:pid`, as the projector
-- sees itself) and its session's application_name and client address, read by the session
-- itself (pg_stat_activity hides them from other logins).
CREATE TABLE vjm.projector_leases (
    name            text        PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),
    holder_pid      integer,
    holder_login    oid,                 -- the holder's session_user, as pg_stat_activity.usesysid
    server_started  timestamptz,         -- pg_postmaster_start_time() when it was taken
    acquired_at     timestamptz,
    renewed_at      timestamptz,
    expires_at      timestamptz,
    holder_process  text CHECK (length(holder_process) <= 200),  -- 'host:pid' of the holder's process
    holder_application_name text,        -- the holder session's application_name
    holder_client_addr inet,             -- its client address (NULL: a Unix socket)
    holder_client_port integer,
    CHECK ((holder_pid IS NULL) = (expires_at IS NULL))
);
INSERT INTO vjm.projector_leases (name) VALUES ('main');

-- Every projector that asks for a lease, the leader and its standbys: one row per session, kept
-- by vjm.try_lead_projector (refreshed at most every 5 seconds, so a standby asking every half
-- second writes rarely). A row counts while its backend lives (vjm.backend_live); a new
-- candidate deletes the rows of sessions that are gone. What `vjm status` lists as standbys.
CREATE TABLE vjm.projector_candidates (
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    backend_pid      integer     NOT NULL,
    login            oid         NOT NULL,
    server_started   timestamptz NOT NULL,
    process          text CHECK (length(process) <= 200),
    application_name text,
    client_addr      inet,
    client_port      integer,
    seen_at          timestamptz NOT NULL,
    PRIMARY KEY (name, backend_pid)
);

-- Whether backend `pid` of login `login`, started under the server started at `started`, is
-- still connected to this database.
CREATE FUNCTION vjm.backend_live(pid integer, login oid, started timestamptz) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pid IS NOT NULL AND started = pg_postmaster_start_time()
       AND EXISTS (SELECT 1 FROM pg_stat_activity a
                    WHERE a.pid = backend_live.pid AND a.usesysid = backend_live.login
                      AND a.datid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
$$;

-- Whether a lease still binds: its holder's backend is alive and it has not expired.
CREATE FUNCTION vjm.projector_lease_live(lease vjm.projector_leases) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT lease.holder_pid IS NOT NULL AND lease.expires_at > clock_timestamp()
       AND vjm.backend_live(lease.holder_pid, lease.holder_login, lease.server_started)
$$;

-- Record the calling session as a candidate for projector `name` (at most every 5 seconds).
CREATE FUNCTION vjm.check_in_projector(name text, process text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    known boolean;
BEGIN
    SELECT c.seen_at > clock_timestamp() - interval '5 seconds' AND c.process IS NOT DISTINCT FROM check_in_projector.process
           AND c.server_started = pg_postmaster_start_time()
      INTO known
      FROM vjm.projector_candidates c WHERE c.name = check_in_projector.name AND c.backend_pid = pg_backend_pid();
    IF known THEN
        RETURN;
    ELSIF known IS NULL THEN  -- a new session: clear out those that are gone (one pass over pg_stat_activity;
        -- rows another new candidate is clearing are skipped, so two of them never wait on each other)
        DELETE FROM vjm.projector_candidates c
         WHERE (c.name, c.backend_pid) IN (
               SELECT g.name, g.backend_pid FROM vjm.projector_candidates g
                WHERE g.name = check_in_projector.name
                  AND (g.server_started <> pg_postmaster_start_time()
                       OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = g.backend_pid
                                         AND a.usesysid = g.login AND a.datname = current_database()))
                  FOR UPDATE SKIP LOCKED);
    END IF;
    INSERT INTO vjm.projector_candidates AS c (name, backend_pid, login, server_started, process, application_name,
                                               client_addr, client_port, seen_at)
    VALUES (check_in_projector.name, pg_backend_pid(), (SELECT r.oid FROM pg_roles r WHERE r.rolname = session_user),
            pg_postmaster_start_time(), left(check_in_projector.process, 200), current_setting('application_name'),
            inet_client_addr(), inet_client_port(), clock_timestamp())
    ON CONFLICT ON CONSTRAINT projector_candidates_pkey DO UPDATE
       SET login = excluded.login, server_started = excluded.server_started, process = excluded.process,
           application_name = excluded.application_name, client_addr = excluded.client_addr,
           client_port = excluded.client_port, seen_at = excluded.seen_at;
END
$$;

-- Take or renew the lease of projector `name` for `ttl`; true while this session leads. The
-- session checks in as a candidate first; `process` is how it names its process ('host:pid').
-- SECURITY INVOKER: only a role that may UPDATE vjm.projector_leases (vjm_projector, the
-- owner) gets anywhere; everyone else fails on the table's privileges.
CREATE FUNCTION vjm.try_lead_projector(name text, ttl interval DEFAULT interval '30 seconds',
                                       process text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF ttl IS NULL OR ttl < interval '1 second' OR ttl > interval '1 day' THEN
        RAISE EXCEPTION 'a projector lease lasts between 1 second and 1 day, not %', ttl USING ERRCODE = '22023';
    END IF;
    PERFORM vjm.check_in_projector(try_lead_projector.name, try_lead_projector.process);
    INSERT INTO vjm.projector_leases AS l (name) VALUES (try_lead_projector.name) ON CONFLICT DO NOTHING;
    UPDATE vjm.projector_leases AS l
       SET holder_pid = pg_backend_pid(),
           holder_login = (SELECT r.oid FROM pg_roles r WHERE r.rolname = session_user),
           server_started = pg_postmaster_start_time(),
           acquired_at = CASE WHEN l.holder_pid = pg_backend_pid() AND l.server_started = pg_postmaster_start_time()
                              THEN l.acquired_at ELSE clock_timestamp() END,
           renewed_at = clock_timestamp(),
           expires_at = clock_timestamp() + ttl,
           holder_process = left(try_lead_projector.process, 200),
           holder_application_name = current_setting('application_name'),
           holder_client_addr = inet_client_addr(),
           holder_client_port = inet_client_port()
     WHERE l.name = try_lead_projector.name
       AND (l.holder_pid IS NULL OR l.holder_pid = pg_backend_pid() OR NOT vjm.projector_lease_live(l));
    RETURN FOUND;
END
$$;

-- Give the lease up (true if this session held it). Closing the session frees it too.
CREATE FUNCTION vjm.stop_leading_projector(name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE vjm.projector_leases AS l SET holder_pid = NULL, expires_at = NULL, renewed_at = clock_timestamp()
     WHERE l.name = stop_leading_projector.name AND l.holder_pid = pg_backend_pid();
    RETURN FOUND;
END
$$;

-- The doorbell rings only when someone is waiting for it.
--
-- Every transaction that calls pg_notify takes one lock for the whole server at commit
-- and keeps it through its WAL flush, so notifying commits run one at a time, ours and
-- every other application's on the same server. A doorbell only has to ring for a
-- listener that is asleep. So a listener that goes to sleep holds the doorbell lock
-- (vjm.doorbell_lock_class(), 0) exclusively, as a session lock; an append rings only when
-- it cannot take the same lock shared for its transaction. Appends hold it shared until
-- they commit, so they do not get in each other's way.
--
-- No wake-up is lost: an append takes the shared lock after it has inserted, and keeps it
-- until it commits. A listener that then takes the exclusive lock (without waiting,
-- vjm.arm_doorbell) knows that every append which looked and found nobody waiting has
-- committed: it looks at the log once more with a fresh snapshot and sleeps only if it
-- found nothing new. An append that looks after that finds the lock taken and rings.
-- While appends are in flight the listener cannot take the lock; it polls instead.
--
-- A raw-SQL listener that wants a doorbell for every append holds the lock for as long as
-- it listens (vjm.hold_doorbell()). One session arms at a time; the holder's own appends
-- do not ring (its lock does not conflict with itself). Losing a doorbell only delays:
-- the projector also polls, at most 50 ms apart while it cannot arm, so a session that
-- sits on the lock costs latency, never data.
--
-- The payload, one shape for every append (listeners.notifications.Doorbell parses it):
--   {"position": <the newest position appended>, "count": <events appended>}
-- Positions only: anyone may LISTEN, so no ids, users or states go on the channel.

-- Ring vjm_events for `count` events up to `newest`, if a listener waits; true if it rang.
-- LANGUAGE sql and no sub-select, so that plpgsql inlines it as one simple expression (a
-- PERFORM would be a query). pg_notify returns void, which is not NULL.
CREATE FUNCTION vjm.ring_doorbell(newest bigint, count integer) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN pg_catalog.pg_try_advisory_xact_lock_shared(vjm.doorbell_lock_class(), 0) THEN false
                ELSE pg_catalog.pg_notify('vjm_events', '{"position":' || newest || ',"count":' || count || '}')
                     IS NOT NULL END
$$;

-- For a listener about to sleep, after it caught up to (after_xact, after_position):
--   'armed'   it holds the doorbell lock and nothing committed after its cursor: sleep
--             until rung (or the poll interval), then vjm.release_doorbell();
--   'pending' events committed after the cursor that it can read now: look again;
--   'held'    events committed after the cursor, above the horizon (an older transaction
--             is still open): poll;
--   'busy'    appends are in flight (or another session holds the lock): poll soon.
-- Only 'armed' leaves the lock held, also when the look at the log fails. READ COMMITTED
-- and VOLATILE: the look at the log must take its snapshot after the lock is taken,
-- which is what makes the wake-up safe (see above).
CREATE FUNCTION vjm.arm_doorbell(after_xact xid8, after_position bigint) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    readable boolean;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'vjm.arm_doorbell needs READ COMMITTED, not %', current_setting('transaction_isolation')
            USING ERRCODE = '25000', HINT = 'its look at the log must see what committed before the lock was taken';
    END IF;
    IF NOT pg_try_advisory_lock(vjm.doorbell_lock_class(), 0) THEN
        RETURN 'busy';
    END IF;
    BEGIN
        -- The first event after the cursor in commit order: readable if any is (it has the lowest xact_id).
        SELECT e.xact_id < vjm.projection_horizon() INTO readable FROM vjm.job_events e
         WHERE (e.xact_id, e.position) > (after_xact, after_position) ORDER BY e.xact_id, e.position LIMIT 1;
        IF FOUND THEN
            PERFORM pg_advisory_unlock(vjm.doorbell_lock_class(), 0);
            RETURN CASE WHEN readable THEN 'pending' ELSE 'held' END;
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(vjm.doorbell_lock_class(), 0);  -- a session lock outlives the error
        RAISE;
    END;
    RETURN 'armed';
END
$$;

-- Hold the doorbell lock, waiting for appends in flight: every later append rings.
CREATE FUNCTION vjm.hold_doorbell() RETURNS void
LANGUAGE sql VOLATILE AS $$ SELECT pg_advisory_lock(vjm.doorbell_lock_class(), 0) $$;

-- Let go of the doorbell lock (true if it was held). Closing the session does the same.
CREATE FUNCTION vjm.release_doorbell() RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT pg_advisory_unlock(vjm.doorbell_lock_class(), 0) $$;

-- Who holds or waits for the doorbell lock in this database (for a projector that cannot arm).
CREATE FUNCTION vjm.doorbell_holders() RETURNS TABLE (pid integer, mode text, granted boolean)
LANGUAGE sql STABLE AS $$
    SELECT l.pid, l.mode, l.granted FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.classid = vjm.doorbell_lock_class() AND l.objid = 0 AND l.objsubid = 2
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
     ORDER BY l.pid
$$;
