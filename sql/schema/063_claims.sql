-- Claims: which queued job a worker starts next, all decided inside the claim statement.
--
--   priority   higher first (0-9, the create's or a reschedule's)
--   turns      within a priority, fair keys take turns: each user ('user:<id>'), or each team
--              ('team:<id>', a job without a team counting as its owner's) when
--              vjm.claim_settings.fair_share says 'team'. A job takes its turn when it enters
--              the queue (vjm.first_turn): after the queued jobs of its key at its priority,
--              and not before the turn being served now. So user A's 10,000 uploads take turns
--              0..9,999, and user B's 10 uploads, made while turn 40 is served, take turns
--              40..49: B's jobs and A's alternate. This is start-time fair queueing with every
--              job costing one. A job keeps its turn when it returns to the queue (a retry, a
--              time_out, a release, a requeue): it is served ahead of newer work, as it was before.
--              A job a run_at holds back enters the queue when its time comes: it has no turn
--              until then (run_queue.turn is NULL), and takes one when a claim releases it.
--   oldest     within a turn, the oldest job first.
--   caps       vjm.claim_caps: at most N jobs processing at once per user, per team or per
--              platform (an encoder pool's capacity); key '*' caps each one without a cap of
--              its own. A claim counts what is processing under a capped key only while it
--              holds that key's advisory lock (vjm.claim_cap_lock_class(), hashtext(key)),
--              so concurrent claimers never overshoot a cap. A key is taken with try-lock: one
--              another claimer is judging is skipped, as SKIP LOCKED skips rows, so with few
--              keys and many claimers a claim may come back short; the next claim takes what it
--              left. A platform's count is looked at first without its lock, so a full platform
--              never makes claimers queue on its lock (each capped platform is looked at so
--              before the first walk, and a full one is left out of it: a claim of full
--              platforms alone reads none of their backlog); a claim that found nothing else to take
--              while a platform was only busy waits for that platform's key once (holding no
--              platform key itself, so no two claimers wait on each other) and looks again.
--              Caps bind claims; a trusted caller that starts a named job directly
--              (vjm.append_event 'start') is not held back by them.
--   pauses     vjm.claim_pauses: no claims for a platform, or for every platform ('*').
--   held back  a job whose not_before (a create's run_at, a requeue's retry_after) is ahead is out of
--              the claim order (run_queue.held); the first claim after that time releases it. One a
--              run_at held back takes its turn then, as if queued then; a requeued one keeps its turn
--              (vjm.claim_jobs).
--
-- The settings change through the functions below (admins only), and every change is a row
-- of vjm.queue_settings_history: who, when, what, why. A change that may let work be claimed
-- (a resume, a cap raised or lifted) sends a NOTIFY on `vjm_queue`, so idle workers claim at
-- once instead of at their next poll.
SET LOCAL ROLE vjm_owner;

-- One row: who takes turns.
CREATE TABLE vjm.claim_settings (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    fair_share text    NOT NULL CHECK (fair_share IN ('user', 'team'))
);
INSERT INTO vjm.claim_settings (fair_share) VALUES ('user');

CREATE TABLE vjm.claim_caps (
    kind           text    NOT NULL CHECK (kind IN ('user', 'team', 'platform')),
    key            text    NOT NULL,  -- a user id, a team id, a platform, or '*': each one without its own cap
    max_processing integer NOT NULL CHECK (max_processing BETWEEN 0 AND 1000000),
    PRIMARY KEY (kind, key)
);

CREATE TABLE vjm.claim_pauses (
    platform  text        PRIMARY KEY,  -- a platform, or '*': every platform
    paused_at timestamptz NOT NULL,
    actor     text        NOT NULL,
    reason    text
);

-- Every change of the queue's settings, append-only (nobody may update or delete a row).
CREATE TABLE vjm.queue_settings_history (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    changed_at timestamptz NOT NULL,
    actor      text        NOT NULL,
    setting    text        NOT NULL CHECK (setting IN ('pause', 'resume', 'cap', 'fair_share')),
    scope      text        NOT NULL,  -- '*', a platform, '<kind>:<key>' for a cap, 'queue' for fair_share
    value      jsonb       NOT NULL,  -- {"max_processing": n} (null: cap removed), {"fair_share": "team"}, {}
    reason     text
);

-- The advisory lock class of claim caps: (class, hashtext(cap key)).
CREATE FUNCTION vjm.claim_cap_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1986359922 $$;

-- Who a job takes turns as under fair share p_fair_share (vjm.claim_settings.fair_share). An
-- expression without a table, so the planner inlines it into the statement that calls it: the
-- guard reads the setting once per call (one statement, its plan kept for the session) and
-- passes it in, where a function that reads the table was planned anew at every call, twice per
-- one-job create (bench/README.md, "Findings: SQL hot spots").
CREATE FUNCTION vjm.fair_key_under(p_fair_share text, p_user_id text, p_team_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_fair_share = 'team' AND p_team_id IS NOT NULL THEN 'team:' || p_team_id::text
                ELSE 'user:' || p_user_id END
$$;

-- Who a job takes turns as, under the current setting (for callers outside the guard).
CREATE FUNCTION vjm.fair_key(p_user_id text, p_team_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT vjm.fair_key_under(s.fair_share, p_user_id, p_team_id) FROM vjm.claim_settings s
$$;

-- The turn a job of key p_key takes on entering priority p_priority's queue: after that key's
-- queued jobs there, and not before the turn being served (the lowest turn among the queued jobs
-- that are not held back, run_queue.held: a job held back until tomorrow does not hold the clock back).
-- plpgsql: as a LANGUAGE sql function (two sub-selects: not inlined) it was parsed and planned again
-- at every execution of the statement that calls it, about 200 us of the guard's one-job create,
-- where plpgsql keeps its plan for the session (bench/README.md, "the HTTP path"). vjm.fair_key_under
-- is sql: a batch create calls it per row, where a plpgsql call costs 10 us against 2.
-- The key's last queued turn is asked first: it is probed from the top of the key's entries, where
-- the queued ones are (claimed entries leave dead index entries below them until vacuum). When that
-- entry is claimable (not held back), the turn being served is at most its turn, so the answer is
-- the next turn and the turn being served is not asked: that probe walks the priority's dead entries
-- from the bottom, where claims take them (bench/README.md, "Findings: SQL hot spots").
CREATE FUNCTION vjm.first_turn(p_priority smallint, p_key text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    last_turn bigint;
BEGIN
    SELECT q.turn INTO last_turn FROM vjm.run_queue q
     WHERE q.queued AND NOT q.held AND q.fair_key = p_key AND q.priority = p_priority
     ORDER BY q.turn DESC LIMIT 1;
    IF FOUND THEN
        RETURN greatest(last_turn + 1, 0);
    END IF;
    RETURN greatest((SELECT q.turn FROM vjm.run_queue q
                      WHERE q.queued AND NOT q.held AND q.priority = p_priority
                      ORDER BY q.turn LIMIT 1), 0);
END
$$;

-- A set of platforms a claim may name: NULL (every platform), else a non-empty, one-dimensional
-- array of the platforms a create accepts, none of them NULL. Anything else is refused (22023)
-- rather than read as "none" or "all".
CREATE FUNCTION vjm.check_platforms(p_platforms text[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_platforms IS NULL THEN
        RETURN;
    END IF;
    IF array_ndims(p_platforms) IS DISTINCT FROM 1 OR array_position(p_platforms, NULL) IS NOT NULL
       OR NOT p_platforms <@ vjm.known_platforms() THEN
        RAISE EXCEPTION 'platforms must be NULL (every platform) or a non-empty list of known platforms, not %',
                        left(p_platforms::text, 200) USING ERRCODE = '22023';
    END IF;
END
$$;

-- The platforms a create accepts. plpgsql: its query keeps its plan for the session, where a SQL
-- function called from plpgsql was parsed and planned at every call (90 us of each capped claim).
CREATE FUNCTION vjm.known_platforms() RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT r.choices FROM vjm.payload_rules r WHERE r.trigger = 'create' AND r.key = 'platform_target');
END
$$;

-- The platforms a claim of p_platforms may take from now: p_platforms itself when nothing is
-- paused (NULL: every platform), less the paused ones otherwise; '{}' when none is left.
CREATE FUNCTION vjm.unpaused_platforms(p_platforms text[]) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM vjm.claim_pauses) THEN p_platforms
                WHEN EXISTS (SELECT 1 FROM vjm.claim_pauses p WHERE p.platform = '*') THEN '{}'::text[]
                ELSE ARRAY(SELECT c FROM unnest(coalesce(p_platforms, vjm.known_platforms())) AS c
                            WHERE NOT EXISTS (SELECT 1 FROM vjm.claim_pauses p WHERE p.platform = c)) END
$$;

-- The claim order's first p_limit claimable jobs that fit under every cap that applies to them
-- (see the top of this file), their entries locked. caps: vjm.claim_caps as the claim read them
-- ('<kind>:<key>' -> max_processing). Looks at most 50 jobs per job asked (and
-- 500 more) past jobs that do not fit, so a claim stays short when the head of the queue is
-- one capped user's: the next claim looks again.
CREATE FUNCTION vjm.claim_within_caps(p_limit integer, p_platforms text[], caps jsonb) RETURNS uuid[]
LANGUAGE plpgsql VOLATILE SET cursor_tuple_fraction = 0.1 AS $$
DECLARE
    counted jsonb := '{}';  -- capped key -> jobs processing under it, this claim's included (keys it holds locked)
    shut text[];            -- capped keys at their cap, or another claimer's to judge now
    closed text[];          -- platforms shut: the next walk leaves them out
    unshut text[];          -- the platforms asked that are not shut
    open1 text;             -- and each of them (a merged walk's branches: NULL, no branch)
    open2 text;
    open3 text;
    open4 text;
    walk_rows refcursor;
    busy text;              -- a platform key another claimer held, not seen at its cap
    stopped_at text;        -- the platform whose shutting ended a walk
    waited boolean := false;
    taken uuid[] := '{}';
    c record;
    keys text[];
    k text;
    cap integer;
    n bigint;
    fits boolean;
BEGIN
    -- The platforms asked (every known one for NULL), and those of them at their cap now (looked at without their
    -- locks, as a walk's first look does): those are left out from the first walk on, since a full platform's
    -- backlog at the head of the queue would end that walk at once. One statement, whatever the caps: each
    -- statement and each expression of a plpgsql function costs its set-up again in every transaction, and a
    -- claim is a transaction of its own (bench/README.md, "where a claim's and a W3 job's CPU goes"). A platform
    -- named twice is one platform (one branch of a merged walk, not two returning the same rows).
    SELECT coalesce(array_agg(p.platform) FILTER (WHERE p.full), '{}'),
           coalesce(array_agg('platform:' || p.platform) FILTER (WHERE p.full), '{}'),
           coalesce(array_agg(p.platform) FILTER (WHERE NOT p.full), '{}')
      INTO closed, shut, unshut
      FROM (SELECT DISTINCT x FROM unnest(coalesce(p_platforms, (SELECT r.choices FROM vjm.payload_rules r
                                 WHERE r.trigger = 'create' AND r.key = 'platform_target'))) AS x) AS a(platform)
     CROSS JOIN LATERAL (
         SELECT a.platform, CASE WHEN pc.cap IS NULL THEN false
                                 ELSE (SELECT count(*) FROM (SELECT FROM vjm.run_queue q
                                                              WHERE q.processing AND q.platform_target = a.platform
                                                              LIMIT pc.cap) s) >= pc.cap END AS full
           FROM (SELECT coalesce((caps ->> ('platform:' || a.platform))::integer,
                                 (caps ->> 'platform:*')::integer) AS cap) pc
         OFFSET 0) p;  -- (not pulled up: each aggregate's filter would count again)
    -- A walk ends when the claim is full, or when a platform shut: the next walk leaves that platform out, so a
    -- shut platform's backlog at the head of the queue never fills the look-ahead.
    FOR walk IN 1 .. 6 LOOP
    stopped_at := NULL;
    IF cardinality(closed) > 0 AND cardinality(unshut) BETWEEN 1 AND 4 THEN
        -- Some platforms shut: the open ones' claim orders merged (run_queue_platform_claim_order), so the shut
        -- ones' backlog is not read row by row to be passed over, however long it grows at the head. Each branch
        -- has the look-ahead's LIMIT too: without it the first (custom) plans sorted every queued job of each
        -- platform instead of merging index scans (1.7 s a claim at a million queued).
        -- A branch without a platform is not run (its condition is a one-time filter), and the walk is planned
        -- for more than its first row (this function's cursor_tuple_fraction, 0.1, PostgreSQL's default): planned
        -- as claim_jobs plans its one walk (start-up cost alone), each branch walked the global claim order and
        -- filtered it by platform, through a shut platform's backlog, and the branches of no platform read the
        -- whole queue (12 ms a capped claim on a 20,000-job queue, bench/README.md; 0.01 still chose that plan).
        -- The plan is made at a session's first OPEN and kept: the per-platform index on 6 jobs and on 20,000.
        open1 := unshut[1]; open2 := unshut[2]; open3 := unshut[3]; open4 := unshut[4];
        OPEN walk_rows FOR
        SELECT u.job_id, u.user_id, u.team_id, u.platform_target FROM (
            (SELECT q.job_id, q.user_id, q.team_id, q.platform_target, q.priority, q.turn, q.created_at FROM vjm.run_queue q
              WHERE q.queued AND q.platform_target = open1 AND NOT q.held AND open1 IS NOT NULL
              ORDER BY q.priority DESC, q.turn, q.created_at, q.job_id LIMIT 50 * p_limit + 500)
            UNION ALL
            (SELECT q.job_id, q.user_id, q.team_id, q.platform_target, q.priority, q.turn, q.created_at FROM vjm.run_queue q
              WHERE q.queued AND q.platform_target = open2 AND NOT q.held AND open2 IS NOT NULL
              ORDER BY q.priority DESC, q.turn, q.created_at, q.job_id LIMIT 50 * p_limit + 500)
            UNION ALL
            (SELECT q.job_id, q.user_id, q.team_id, q.platform_target, q.priority, q.turn, q.created_at FROM vjm.run_queue q
              WHERE q.queued AND q.platform_target = open3 AND NOT q.held AND open3 IS NOT NULL
              ORDER BY q.priority DESC, q.turn, q.created_at, q.job_id LIMIT 50 * p_limit + 500)
            UNION ALL
            (SELECT q.job_id, q.user_id, q.team_id, q.platform_target, q.priority, q.turn, q.created_at FROM vjm.run_queue q
              WHERE q.queued AND q.platform_target = open4 AND NOT q.held AND open4 IS NOT NULL
              ORDER BY q.priority DESC, q.turn, q.created_at, q.job_id LIMIT 50 * p_limit + 500)) u
         ORDER BY u.priority DESC, u.turn, u.created_at, u.job_id
         LIMIT 50 * p_limit + 500;
    ELSE
        OPEN walk_rows FOR
        SELECT q.job_id, q.user_id, q.team_id, q.platform_target FROM vjm.run_queue q
         WHERE q.queued AND (p_platforms IS NULL OR q.platform_target = ANY (p_platforms))
           AND q.platform_target <> ALL (closed)
           AND cardinality(unshut) > 0  -- every platform asked shut: no walk (it would read all of them to find none)
           AND NOT q.held
         ORDER BY q.priority DESC, q.turn, q.created_at, q.job_id
         LIMIT 50 * p_limit + 500;  -- planned for the look-ahead, not the whole queue (no sort, no JIT)
    END IF;
    LOOP
        FETCH walk_rows INTO c;
        EXIT WHEN NOT FOUND;
        CONTINUE WHEN c.job_id = ANY (taken);  -- taken by an earlier walk (still queued until it starts)
        keys := ARRAY['platform:' || c.platform_target, 'team:' || c.team_id, 'user:' || c.user_id];
        CONTINUE WHEN keys && shut;  -- passed over before any key of it is locked or counted
        fits := true;
        FOR i IN 1 .. 3 LOOP
            k := keys[i];
            cap := coalesce((caps ->> k)::integer, (caps ->> (split_part(k, ':', 1) || ':*'))::integer);
            CONTINUE WHEN k IS NULL OR cap IS NULL;  -- no team, or nothing caps this key
            IF NOT counted ? k THEN
                -- Counted only under the key's lock, by a statement of its own: it sees every claim under this key
                -- committed before the lock was taken, and no other can commit meanwhile. A key another claimer
                -- holds is skipped, never waited for (as SKIP LOCKED skips rows). A platform, every claimer's key,
                -- is first looked at without its lock: one at its cap is shut without taking it, so claimers do not
                -- queue on a full platform's lock. Counts stop at the cap: the cost is bounded by the cap.
                FOR pass IN (CASE WHEN i = 1 THEN 1 ELSE 2 END) .. 2 LOOP
                    IF pass = 2 AND NOT pg_try_advisory_xact_lock(vjm.claim_cap_lock_class(), hashtext(k)) THEN
                        n := NULL;
                        EXIT;
                    END IF;
                    IF i = 1 THEN
                        SELECT count(*) INTO n FROM (SELECT FROM vjm.run_queue q
                                                      WHERE q.processing AND q.platform_target = c.platform_target
                                                      LIMIT cap) s;
                    ELSIF i = 2 THEN
                        SELECT count(*) INTO n FROM (SELECT FROM vjm.run_queue q
                                                      WHERE q.processing AND q.team_id = c.team_id LIMIT cap) s;
                    ELSE
                        SELECT count(*) INTO n FROM (SELECT FROM vjm.run_queue q
                                                      WHERE q.processing AND q.user_id = c.user_id LIMIT cap) s;
                    END IF;
                    EXIT WHEN n >= cap;  -- at its cap: shut (after the first look, without its lock)
                END LOOP;
                IF n IS NULL OR n >= cap THEN
                    shut := shut || k;
                    busy := CASE WHEN i = 1 AND n IS NULL THEN coalesce(busy, k) ELSE busy END;
                    fits := false;
                    EXIT;
                END IF;
                counted := counted || jsonb_build_object(k, n);
            ELSIF (counted ->> k)::bigint >= cap THEN
                shut := shut || k;
                fits := false;
                EXIT;
            END IF;
        END LOOP;
        IF NOT fits AND keys[1] = ANY (shut) THEN  -- a platform shut: walk again without it
            stopped_at := c.platform_target;
            EXIT;
        END IF;
        CONTINUE WHEN NOT fits;
        PERFORM 1 FROM vjm.run_queue q WHERE q.job_id = c.job_id AND q.queued FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;  -- another claimer's, or no longer queued
        taken := taken || c.job_id;
        FOR i IN 1 .. 3 LOOP
            IF keys[i] IS NOT NULL AND counted ? keys[i] THEN
                counted := jsonb_set(counted, ARRAY[keys[i]], to_jsonb((counted ->> keys[i])::bigint + 1));
            END IF;
        END LOOP;
        EXIT WHEN cardinality(taken) >= p_limit;
    END LOOP;
    CLOSE walk_rows;
    EXIT WHEN cardinality(taken) >= p_limit;
    IF stopped_at IS NOT NULL THEN  -- the walk ended at a platform that shut: once more without it
        closed := closed || stopped_at;
        unshut := array_remove(unshut, stopped_at);
    ELSIF cardinality(taken) = 0 AND busy IS NOT NULL AND NOT waited
          AND NOT EXISTS (SELECT FROM jsonb_object_keys(counted) key WHERE key LIKE 'platform:%') THEN
        -- Nothing else to take, and a platform was only busy: wait for its claimer (holding no platform key, so
        -- no two waiters wait on each other) and look at it again.
        PERFORM pg_advisory_xact_lock(vjm.claim_cap_lock_class(), hashtext(busy));
        shut := array_remove(shut, busy);
        closed := array_remove(closed, substr(busy, 10));
        unshut := unshut || substr(busy, 10);
        waited := true;
    ELSE
        EXIT;  -- nothing new shut: another walk would see the same rows
    END IF;
    END LOOP;
    RETURN taken;
END
$$;

-- Claims: start up to p_limit queued jobs (of the platforms p_platforms names, or of every
-- platform when NULL) for a worker, in claim order (see the top of this file), none of a paused
-- platform and none past a cap. Entries are locked with SKIP LOCKED, so concurrent claimers never
-- meet. Returns the `start` events, in claim order. A locked queued entry guarantees the job is
-- queued, so a job that cannot start means the queue and the log disagree: that raises, and
-- `vjm projections verify` names the job. With p_lease_seconds, each started job also gets a lease
-- of that length (vjm.leases, 065_workers.sql), in the same transaction; NULL takes none, and runs
-- no statement for it (a claim is one SECURITY DEFINER call, not a wrapper around one: the wrapper's
-- call, its result set and its lease statement cost 0.1-0.4 ms of a one-job claim, bench/README.md).
-- Every statement a claim runs keeps one plan for the session (force_generic_plan): a claim is a
-- processor's hot path, and custom plans cost more to make than to run. The walks are cursors
-- planned to return their first rows fast (cursor_tuple_fraction): so each is planned as the ordered
-- index scan it is, whatever the queue's size when the plan was made; a plan made for "10% of the
-- queue" could sort the whole queue instead. ANALYZE of a table makes its plans again. No JIT:
-- a walk's plan is costed as the whole queue's (the cursor reads a few rows of it), so at a
-- million queued it passed jit_above_cost, and compiling took 12 ms of every claim.
CREATE FUNCTION vjm.claim_jobs(p_worker_id text, p_limit integer, p_platforms text[] DEFAULT NULL,
                               p_lease_seconds double precision DEFAULT NULL)
RETURNS SETOF vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan SET cursor_tuple_fraction = 0.000001
SET jit = off
AS $$
DECLARE
    claimed uuid[] := '{}';
    n integer;
    walk_rows refcursor;
    job uuid;
    worker constant jsonb := jsonb_build_object('worker_id', p_worker_id);
    o vjm.outcome;
    platforms text[];
    paused boolean;
    caps jsonb;  -- vjm.claim_caps ('<kind>:<key>' -> max_processing), NULL when there is none
    due boolean; -- a held-back job's time has come
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = '22023';
    END IF;
    IF p_worker_id IS NULL OR NOT vjm.payload_ok('start', worker) THEN  -- the start events' payload
        RAISE EXCEPTION 'worker_id breaks the payload rules of start (1-128 characters)' USING ERRCODE = '22023';
    END IF;
    IF p_platforms IS NOT NULL THEN  -- (a statement: not paid by a claim of every platform)
        PERFORM vjm.check_platforms(p_platforms);
    END IF;
    IF p_lease_seconds IS NOT NULL THEN
        PERFORM vjm.check_lease_seconds(p_lease_seconds);
    END IF;
    IF NOT vjm.may_fire('start') THEN
        RAISE EXCEPTION 'not allowed to start jobs' USING ERRCODE = '42501';
    END IF;
    -- One plain statement (its plan kept for the session), not a SQL function planned on every call: a claim
    -- asks it every time, and nothing is paused, capped or due most of the time.
    SELECT EXISTS (SELECT FROM vjm.claim_pauses),
           (SELECT jsonb_object_agg(c.kind || ':' || c.key, c.max_processing) FROM vjm.claim_caps c),
           (SELECT q.not_before FROM vjm.run_queue q WHERE q.queued AND q.held ORDER BY q.not_before LIMIT 1) <= now()
      INTO paused, caps, due;  -- (the earliest held-back job, by run_queue_held_back: any plan of it is that index)
    IF due THEN
        -- Held-back jobs whose time has come enter the claim order (run_queue.held), the earliest due first, a
        -- batch at a time. A job a run_at held back takes its turn now, as a job queued now would (its key's
        -- jobs released together take consecutive turns): so uploads scheduled in bulk take turns with everyone
        -- else's when their time comes, and did not take turns from their owner's work meanwhile. A requeued one
        -- kept its turn. The claim order's indexes hold no held-back job, so no walk reads past tomorrow's jobs.
        -- One another claimer is releasing is skipped.
        WITH due_now AS (
            SELECT h.job_id, h.fair_key, h.priority, h.turn, h.not_before, h.created_at FROM vjm.run_queue h
             WHERE h.queued AND h.held AND h.not_before <= now()
             ORDER BY h.not_before LIMIT 100 + p_limit FOR UPDATE SKIP LOCKED
        ), firsts AS MATERIALIZED (  -- before any entry is released: a released one would count as the key's last
            SELECT g.fair_key, g.priority, vjm.first_turn(g.priority, g.fair_key) AS first
              FROM (SELECT DISTINCT d.fair_key, d.priority FROM due_now d WHERE d.turn IS NULL) g
        )
        UPDATE vjm.run_queue q SET held = false, turn = coalesce(d.turn, f.first + d.rank)
          FROM (SELECT d.*, row_number() OVER (PARTITION BY d.fair_key, d.priority, d.turn IS NULL
                                               ORDER BY d.not_before, d.created_at, d.job_id) - 1 AS rank
                  FROM due_now d) d
          LEFT JOIN firsts f ON f.fair_key = d.fair_key AND f.priority = d.priority
         WHERE q.job_id = d.job_id;
    END IF;
    platforms := CASE WHEN paused THEN vjm.unpaused_platforms(p_platforms) ELSE p_platforms END;
    IF cardinality(platforms) = 0 THEN  -- every platform asked is paused
        RETURN;
    END IF;
    IF caps IS NOT NULL THEN
        claimed := vjm.claim_within_caps(p_limit, platforms, caps);
    ELSE
        -- One walk of run_queue_claim_order for every platform asked: no per-platform merge. A cursor fetched
        -- p_limit times locks the rows it returns and no more (LIMIT p_limit would do the same, but its plan
        -- depends on p_limit: it was planned anew at every claim, 40% of a one-job claim's time).
        OPEN walk_rows FOR
        SELECT q.job_id FROM vjm.run_queue q
         WHERE q.queued AND (platforms IS NULL OR q.platform_target = ANY (platforms))
           AND NOT q.held
         ORDER BY q.priority DESC, q.turn, q.created_at, q.job_id
           FOR UPDATE SKIP LOCKED;
        FOR i IN 1 .. p_limit LOOP
            FETCH walk_rows INTO job;
            EXIT WHEN NOT FOUND;
            claimed := claimed || job;
        END LOOP;
        CLOSE walk_rows;
    END IF;
    n := coalesce(cardinality(claimed), 0);
    IF n = 0 THEN
        RETURN;
    END IF;
    o := vjm.guard_append(claimed, array_fill('start'::text, ARRAY[n]),
                          to_jsonb(array_fill(worker, ARRAY[n])), array_fill(p_worker_id, ARRAY[n]),
                          array_fill(NULL::integer, ARRAY[n]), array_fill(NULL::integer, ARRAY[n]),
                          array_fill(NULL::text, ARRAY[n]), array_fill(NULL::uuid, ARRAY[n]), true, false, true);
    IF cardinality(o.refused) > 0 THEN
        RAISE EXCEPTION 'the run queue disagrees with the log: queued job % cannot start (%)', o.refused[1].job_id,
                        o.refused[1].message USING ERRCODE = 'XX000', HINT = 'vjm projections verify lists them';
    END IF;
    IF p_lease_seconds IS NOT NULL THEN
        INSERT INTO vjm.leases AS l (job_id, attempt, worker_id, lease_seconds, expires_at, renewed_at)
        SELECT a.job_id, a.attempt, p_worker_id, p_lease_seconds,
               clock_timestamp() + make_interval(secs => p_lease_seconds), clock_timestamp()
          FROM unnest(o.appended) a
        ON CONFLICT (job_id) DO UPDATE
            SET attempt = excluded.attempt, worker_id = excluded.worker_id, lease_seconds = excluded.lease_seconds,
                expires_at = excluded.expires_at, renewed_at = excluded.renewed_at;
    END IF;
    RETURN QUERY
    SELECT a.position, a.xact_id, a.job_id, a.version, a.type, a.from_state, a.to_state, a.attempt, a.attempts_left,
           worker, a.actor, a.user_id, a.team_id, a.occurred_at, a.prev_hash, a.hash
      FROM unnest(o.appended) a
     ORDER BY array_position(claimed, a.job_id);
END
$$;

-- Record a change of the queue's settings (admins only: the caller is checked here, for every
-- setter). The actor: p_actor, else the service principal the session names, else the role.
CREATE FUNCTION vjm.record_queue_setting(p_setting text, p_scope text, p_value jsonb, p_actor text, p_reason text)
RETURNS vjm.queue_settings_history
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    h vjm.queue_settings_history;
BEGIN
    IF vjm.caller_kind() <> 'admin' THEN
        RAISE EXCEPTION 'only admins change the queue''s settings' USING ERRCODE = '42501';
    END IF;
    IF p_actor IS NOT NULL AND length(p_actor) NOT BETWEEN 1 AND 200 OR length(p_reason) > 500 THEN
        RAISE EXCEPTION 'actor 1-200 characters, reason at most 500' USING ERRCODE = '22023';
    END IF;
    INSERT INTO vjm.queue_settings_history (changed_at, actor, setting, scope, value, reason)
    VALUES (clock_timestamp(), coalesce(p_actor, nullif(current_setting('vjm.principal', true), ''), vjm.caller_role()),
            p_setting, p_scope, p_value, p_reason)
    RETURNING * INTO h;
    RETURN h;
END
$$;

-- A platform a queue setting names: a known one, or NULL for every platform ('*').
CREATE FUNCTION vjm.platform_scope(p_platform text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_platform IS NOT NULL AND NOT p_platform = ANY (vjm.known_platforms()) THEN
        RAISE EXCEPTION 'unknown platform %: one of %', left(p_platform, 64), vjm.known_platforms()
            USING ERRCODE = '22023';
    END IF;
    RETURN coalesce(p_platform, '*');
END
$$;

-- Stop claims for platform p_platform, or for every platform (NULL). Running jobs run on.
CREATE FUNCTION vjm.pause_claims(p_platform text DEFAULT NULL, p_actor text DEFAULT NULL, p_reason text DEFAULT NULL)
RETURNS vjm.queue_settings_history
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    scope constant text := vjm.platform_scope(p_platform);
    h vjm.queue_settings_history;
BEGIN
    h := vjm.record_queue_setting('pause', scope, '{}', p_actor, p_reason);
    INSERT INTO vjm.claim_pauses (platform, paused_at, actor, reason) VALUES (scope, h.changed_at, h.actor, p_reason)
    ON CONFLICT (platform) DO NOTHING;
    RETURN h;
END
$$;

-- Claims again for platform p_platform (a platform paused on its own), or, with NULL, for
-- everything: every pause is lifted.
CREATE FUNCTION vjm.resume_claims(p_platform text DEFAULT NULL, p_actor text DEFAULT NULL, p_reason text DEFAULT NULL)
RETURNS vjm.queue_settings_history
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    scope constant text := vjm.platform_scope(p_platform);
    h vjm.queue_settings_history;
BEGIN
    h := vjm.record_queue_setting('resume', scope, '{}', p_actor, p_reason);
    DELETE FROM vjm.claim_pauses p WHERE scope = '*' OR p.platform = scope;
    PERFORM pg_notify('vjm_queue', json_build_object('setting', 'resume', 'scope', scope)::text);
    RETURN h;
END
$$;

-- Cap the jobs processing at once under one key: p_kind 'user', 'team' or 'platform'; p_key a
-- user id, a team id, a platform, or '*' (each one without a cap of its own); p_max 0 to
-- 1,000,000, or NULL to remove the cap.
CREATE FUNCTION vjm.set_claim_cap(p_kind text, p_key text, p_max integer, p_actor text DEFAULT NULL,
                                  p_reason text DEFAULT NULL)
RETURNS vjm.queue_settings_history
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h vjm.queue_settings_history;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('user', 'team', 'platform') THEN
        RAISE EXCEPTION 'a cap is per user, team or platform, not %', left(p_kind, 64) USING ERRCODE = '22023';
    END IF;
    IF p_key IS NULL OR p_key <> '*' AND (
           p_kind = 'user' AND length(p_key) NOT BETWEEN 1 AND 128
           OR p_kind = 'team' AND p_key !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           OR p_kind = 'platform' AND NOT p_key = ANY (vjm.known_platforms())) THEN
        RAISE EXCEPTION 'a % cap names % or ''*'', not %', p_kind,
                        CASE p_kind WHEN 'user' THEN 'a user id (1-128 characters)'
                                    WHEN 'team' THEN 'a team id (a lower-case UUID)' ELSE 'a known platform' END,
                        coalesce(left(p_key, 64), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_max IS NOT NULL AND p_max NOT BETWEEN 0 AND 1000000 THEN
        RAISE EXCEPTION 'a cap is 0 to 1000000 jobs, not %', p_max USING ERRCODE = '22023';
    END IF;
    IF p_max IS NULL AND NOT EXISTS (SELECT FROM vjm.claim_caps c WHERE c.kind = p_kind AND c.key = p_key) THEN
        RAISE EXCEPTION 'there is no % cap on % to remove', p_kind, p_key USING ERRCODE = '22023';
    END IF;
    h := vjm.record_queue_setting('cap', p_kind || ':' || p_key, jsonb_build_object('max_processing', p_max),
                                  p_actor, p_reason);
    IF p_max IS NULL THEN
        DELETE FROM vjm.claim_caps c WHERE c.kind = p_kind AND c.key = p_key;
    ELSE
        INSERT INTO vjm.claim_caps (kind, key, max_processing) VALUES (p_kind, p_key, p_max)
        ON CONFLICT (kind, key) DO UPDATE SET max_processing = excluded.max_processing;
    END IF;
    PERFORM pg_notify('vjm_queue', json_build_object('setting', 'cap', 'scope', h.scope)::text);
    RETURN h;
END
$$;

-- Who takes turns from now on: 'user' or 'team'. Jobs queued already keep their turns.
CREATE FUNCTION vjm.set_fair_share(p_by text, p_actor text DEFAULT NULL, p_reason text DEFAULT NULL)
RETURNS vjm.queue_settings_history
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h vjm.queue_settings_history;
BEGIN
    IF p_by IS NULL OR p_by NOT IN ('user', 'team') THEN
        RAISE EXCEPTION 'fair share is by user or team, not %', left(p_by, 64) USING ERRCODE = '22023';
    END IF;
    h := vjm.record_queue_setting('fair_share', 'queue', jsonb_build_object('fair_share', p_by), p_actor, p_reason);
    UPDATE vjm.claim_settings SET fair_share = p_by;
    RETURN h;
END
$$;
