-- The doorbell rings only when someone is waiting for it.
--
-- Every transaction that calls pg_notify takes one lock for the whole server at commit
-- ("database 0", async.c PreCommit_Notify) and keeps it through its WAL flush, so that
-- notifications are queued in commit order. Notifying commits therefore run one at a
-- time, ours and every other application's on the same server. Measured here with 8
-- writers on 2 cores: 10,000 INSERTs/s, 5,400 INSERT+NOTIFYs/s; every append and claim
-- rang, so vjm's writes queued on that lock (bench/README.md, W1).
--
-- A doorbell only has to ring for a listener that is asleep. So a listener that goes to
-- sleep holds the doorbell lock, a session advisory lock (1986359921, 0), exclusively;
-- an append rings only when it cannot take the same lock shared for its transaction.
-- Appends hold it shared until they commit, so they do not get in each other's way.
--
-- No wake-up is lost: an append takes the shared lock after it has inserted, and keeps
-- it until it commits. A listener that then takes the exclusive lock (without waiting,
-- vjm.arm_doorbell) knows that every append which looked and found nobody waiting has
-- committed: it looks at the log once more with a fresh snapshot and sleeps only if it
-- found nothing new. An append that looks after that finds the lock taken and rings.
-- While appends are in flight the listener cannot take the lock; it polls instead, and
-- the busier the log, the sooner it finds work (listeners/projector.py).
--
-- With nobody waiting (no projector, or a projector busy projecting) appends do not
-- ring at all. A raw-SQL listener that wants a doorbell for every append holds the lock
-- for as long as it listens (vjm.hold_doorbell()); the projector holds it only while it
-- sleeps. Notifications go to every session LISTENing on vjm_events, whoever holds it.
-- One session arms at a time (the leading projector): a second one finds the lock taken
-- and polls. The holder's own appends do not ring (its lock does not conflict with itself).
-- Losing a doorbell still only delays (DESIGN invariant 7): the projector also polls, at
-- most 50 ms apart while it cannot arm, so a session that sits on the lock (any role may
-- take an advisory lock) costs latency, never data.

SET LOCAL ROLE vjm_owner;  -- objects are owned by vjm_owner from birth (see 003_roles.sql)

-- Ring vjm_events with `payload`, if a listener waits. LANGUAGE sql and no sub-select,
-- so that plpgsql inlines it as one simple expression in the append functions.
CREATE FUNCTION vjm.ring_doorbell(payload text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN pg_catalog.pg_try_advisory_xact_lock_shared(1986359921, 0) THEN NULL
                ELSE pg_catalog.pg_notify('vjm_events', payload) END
$$;
REVOKE ALL ON FUNCTION vjm.ring_doorbell(text) FROM PUBLIC;

-- Every function that rang vjm_events itself now rings through vjm.ring_doorbell; the
-- rest of each definition is unchanged (pg_get_functiondef keeps SECURITY DEFINER, the
-- search_path setting, owner and grants).
DO $$
DECLARE
    f record;
    rewritten integer := 0;
BEGIN
    FOR f IN SELECT p.oid, pg_get_functiondef(p.oid) AS definition FROM pg_proc p
              WHERE p.pronamespace = 'vjm'::regnamespace AND p.proname <> 'ring_doorbell'
                AND p.prosrc LIKE '%pg_notify(''vjm_events'', %' LOOP
        EXECUTE replace(f.definition, 'pg_notify(''vjm_events'', ', 'vjm.ring_doorbell(');
        rewritten := rewritten + 1;
    END LOOP;
    -- Nothing else may notify vjm_events itself (tests/integration/test_doorbell.py checks
    -- the same after every migration).
    IF rewritten = 0 OR EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'vjm'::regnamespace
                                   AND p.proname <> 'ring_doorbell'
                                   AND p.prosrc ~* '(pg_notify\s*\(\s*''vjm_events''|\mnotify\s+vjm_events)') THEN
        RAISE EXCEPTION 'doorbell rewrite incomplete (% functions rewritten)', rewritten;
    END IF;
END
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
    IF NOT pg_try_advisory_lock(1986359921, 0) THEN
        RETURN 'busy';
    END IF;
    BEGIN
        -- The first event after the cursor in commit order: readable if any is (it has the lowest xact_id).
        SELECT e.xact_id < vjm.projection_horizon() INTO readable FROM vjm.job_events e
         WHERE (e.xact_id, e.position) > (after_xact, after_position) ORDER BY e.xact_id, e.position LIMIT 1;
        IF FOUND THEN
            PERFORM pg_advisory_unlock(1986359921, 0);
            RETURN CASE WHEN readable THEN 'pending' ELSE 'held' END;
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(1986359921, 0);  -- a session lock outlives the error: never leave it held
        RAISE;
    END;
    RETURN 'armed';
END
$$;

-- Hold the doorbell lock, waiting for appends in flight: every later append rings.
CREATE FUNCTION vjm.hold_doorbell() RETURNS void
LANGUAGE sql VOLATILE AS $$ SELECT pg_advisory_lock(1986359921, 0) $$;

-- Let go of the doorbell lock (true if it was held). Closing the session does the same.
CREATE FUNCTION vjm.release_doorbell() RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT pg_advisory_unlock(1986359921, 0) $$;

REVOKE ALL ON FUNCTION vjm.arm_doorbell(xid8, bigint), vjm.hold_doorbell(), vjm.release_doorbell() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vjm.arm_doorbell(xid8, bigint), vjm.hold_doorbell(), vjm.release_doorbell()
    TO vjm_projector, vjm_admin;
