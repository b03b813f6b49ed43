-- The read models: derived from vjm.job_events by the projector (listeners/). They are a
-- pure function of the events (store/projections/fold.py): dropping them and replaying gives the
-- same rows. Only the projector writes them; rebuild merges a replay into them in place.
SET LOCAL ROLE vjm_owner;

-- The minute since the epoch of an instant (vjm.jobs.activity_minute). IMMUTABLE holds: an epoch does not
-- depend on the time zone.
CREATE FUNCTION vjm.epoch_minute(at timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT floor(extract(epoch FROM at) / 60)::bigint $$;

-- The current state of every job that is not deleted.
CREATE TABLE vjm.jobs (
    job_id            uuid PRIMARY KEY,
    user_id           text        NOT NULL,
    team_id           uuid        REFERENCES vjm.teams (team_id),  -- team rows are never deleted (delete_team)
    status            text        NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    attempt           integer     NOT NULL,
    attempts_left     smallint    NOT NULL,
    max_attempts      smallint    NOT NULL,
    worker_id         text,
    idempotency_key   text,         -- the create's (062_idempotency.sql)
    original_filename text        NOT NULL,
    original_filesize bigint      NOT NULL,
    clip_count        integer     NOT NULL,
    quality_preset    text        NOT NULL,
    enhancement_level text        NOT NULL,
    platform_target   text        NOT NULL,
    priority          smallint    NOT NULL DEFAULT 0,  -- the create's (higher is claimed first)
    run_at            timestamptz,  -- the create's: not claimed before
    progress_percent  real        NOT NULL DEFAULT 0,
    clips_done        integer     NOT NULL DEFAULT 0,
    output_paths      text[],
    error_message     text,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz,  -- when it completed or failed (the specification's field)
    cancelled_at      timestamptz,  -- when it was cancelled: a cancel is not a completion
    processing_time   double precision,  -- how long its last attempt took to complete or fail
    last_activity_at  timestamptz NOT NULL,
    version           integer     NOT NULL,
    last_position     bigint      NOT NULL,
    -- last_activity_at to the minute, for the stuck scan's index: it changes once a minute, where last_activity_at
    -- changes with every projected event (an update that changes an indexed column is never HOT)
    activity_minute   bigint      GENERATED ALWAYS AS (vjm.epoch_minute(last_activity_at)) STORED
) WITH (fillfactor = 85);  -- room on the page for a HOT update: progress and reports change no indexed column

CREATE INDEX jobs_user_created ON vjm.jobs (user_id, created_at DESC, job_id DESC);
CREATE INDEX jobs_team_created ON vjm.jobs (team_id, created_at DESC, job_id DESC) WHERE team_id IS NOT NULL;
-- The stuck detector's scan (listeners/stuck_detector.py): processing jobs by the minute of their last activity.
-- Not by last_activity_at, which every projected event changes: an update that changes no indexed column is HOT
-- (no index entries written), and a progress report changes activity_minute once a minute at most. Indexed by
-- job id instead (2026-12-06), the scan read and sorted every processing job: 259 ms at 50,000 of them (W5).
CREATE INDEX jobs_processing_idle ON vjm.jobs (activity_minute) WHERE status = 'processing';

-- Counters per scope over the rows of vjm.jobs, maintained incrementally by the projector
-- (deltas in the same transaction as the rows). Scopes: 'user' (scope_id: the owner),
-- 'team' (the team id) and 'member' ('<team id>:<owner>', a team's jobs by one owner). A
-- member row lets a user's view of their own and their teams' jobs be summed exactly from
-- counters: own + each team's - their own jobs in each of those teams (store/jobs.py,
-- StatsScope), where adding own and team rows alone would count those jobs twice.
-- Processing time is kept in integer milliseconds so that adding and removing a
-- job's contribution is exact and a recount always matches to the digit.
CREATE TABLE vjm.job_stats (
    scope                   text   NOT NULL CHECK (scope IN ('user', 'team', 'member')),
    scope_id                text   NOT NULL,
    user_id                 text,
    team_id                 uuid,
    total_jobs              bigint NOT NULL DEFAULT 0,
    queued_jobs             bigint NOT NULL DEFAULT 0,
    processing_jobs         bigint NOT NULL DEFAULT 0,
    completed_jobs          bigint NOT NULL DEFAULT 0,
    failed_jobs             bigint NOT NULL DEFAULT 0,
    cancelled_jobs          bigint NOT NULL DEFAULT 0,
    timed_jobs              bigint NOT NULL DEFAULT 0,
    total_processing_ms     bigint NOT NULL DEFAULT 0,
    -- For SQL dashboards reading the table directly:
    total_processing_time   double precision GENERATED ALWAYS AS (total_processing_ms / 1000.0) STORED,
    average_processing_time double precision GENERATED ALWAYS AS
        (CASE WHEN timed_jobs > 0 THEN total_processing_ms / 1000.0 / timed_jobs END) STORED,
    PRIMARY KEY (scope, scope_id),
    CHECK ((scope <> 'team') = (user_id IS NOT NULL) AND (scope <> 'user') = (team_id IS NOT NULL))
);

-- Daily history for charts, per scope and UTC day of the event that finished an
-- attempt: completed and failed jobs and the processing seconds they used. It is
-- history, so deleting or retrying a job later does not change past days.
CREATE TABLE vjm.job_stats_daily (
    scope          text   NOT NULL CHECK (scope IN ('user', 'team', 'member')),
    scope_id       text   NOT NULL,
    user_id        text,
    team_id        uuid,
    day            date   NOT NULL,
    completed_jobs bigint NOT NULL DEFAULT 0,
    failed_jobs    bigint NOT NULL DEFAULT 0,
    cancelled_jobs bigint NOT NULL DEFAULT 0,
    processing_ms  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id, day)
);

-- Jobs per platform and status per scope, kept next to vjm.job_stats: the fold emits
-- per-(scope, scope_id, platform_target) deltas from a job's row before and after a batch,
-- so a job whose platform changes moves between platforms. A row whose total drops to 0
-- is deleted, so the counters equal a recount exactly.
CREATE TABLE vjm.job_stats_platform (
    scope           text   NOT NULL CHECK (scope IN ('user', 'team', 'member')),
    scope_id        text   NOT NULL,
    user_id         text,
    team_id         uuid,
    platform_target text   NOT NULL,
    total_jobs      bigint NOT NULL DEFAULT 0,
    queued_jobs     bigint NOT NULL DEFAULT 0,
    processing_jobs bigint NOT NULL DEFAULT 0,
    completed_jobs  bigint NOT NULL DEFAULT 0,
    failed_jobs     bigint NOT NULL DEFAULT 0,
    cancelled_jobs  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id, platform_target),
    CHECK ((scope <> 'team') = (user_id IS NOT NULL) AND (scope <> 'user') = (team_id IS NOT NULL))
);

-- Where each projector has got to, in commit-safe order (xact_id, position), and
-- the last change-feed sequence number it handed out. The active projector locks
-- this row FOR UPDATE in every apply transaction: that serialises appliers (and a
-- rebuild) even if two ever ran at once, and makes change_seq gap-free.
--
-- fault_*: the event after the cursor that the projector cannot apply (listeners/projector.py),
-- NULL while it projects. The projector stops there for every tenant (commit order is the
-- change feed's contract) and records it here: /healthz, /metrics and `vjm projections
-- status` read it. Advancing the checkpoint clears it (the event was applied, or voided).
CREATE TABLE vjm.projection_checkpoints (
    name             text PRIMARY KEY,
    xact_id          xid8        NOT NULL DEFAULT '0'::xid8,
    position         bigint      NOT NULL DEFAULT 0,
    change_seq       bigint      NOT NULL DEFAULT 0,
    events           bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    fault_position   bigint,
    fault_job_id     uuid,
    fault_version    integer,
    fault_type       text,
    fault_error      text,
    fault_since      timestamptz,
    fault_checked_at timestamptz,
    fault_attempts   integer     NOT NULL DEFAULT 0,
    CHECK ((fault_position IS NULL) = (fault_since IS NULL))
);

INSERT INTO vjm.projection_checkpoints (name) VALUES ('main');

-- Voids: an admin's `void` event names an earlier event of the same job (data.position) that
-- the read models skip (store/projections/fold.py). The projector looks up the voids of the jobs in
-- each batch, rebuild and verify all of them: this index holds only the void events.
CREATE INDEX job_events_voids ON vjm.job_events (job_id) WHERE type = 'void';

-- An admin voids the event at p_position: appends `void` {"position", "reason"} to its job,
-- holding every projection checkpoint (no apply runs meanwhile). Refused (22023) for a void,
-- for an event already voided, and for an event a projection has already applied: the live
-- rows would then differ from a rebuild. VJ404 when there is no such event; 42501 unless the
-- caller is an admin (the guard decides that too: vjm.trigger_rules says 'admin').
CREATE FUNCTION vjm.void_event(p_position bigint, p_reason text) RETURNS vjm.job_events
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target record;
    applied text;
BEGIN
    IF NOT vjm.may_fire('void') THEN
        RAISE EXCEPTION 'only an admin may void an event' USING ERRCODE = '42501';
    END IF;
    PERFORM 1 FROM vjm.projection_checkpoints c ORDER BY c.name FOR UPDATE;
    SELECT e.position, e.xact_id, e.job_id, e.version, e.type INTO target
      FROM vjm.job_events e WHERE e.position = p_position;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no event at position %', p_position USING ERRCODE = 'VJ404';
    END IF;
    IF target.type = 'void' THEN
        RAISE EXCEPTION 'event % is a void: a void cannot be voided', p_position USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM vjm.job_events v
                WHERE v.type = 'void' AND v.job_id = target.job_id AND v.data ->> 'position' = p_position::text) THEN
        RAISE EXCEPTION 'event % is voided already', p_position USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(c.name, ', ' ORDER BY c.name) INTO applied FROM vjm.projection_checkpoints c
     WHERE (c.xact_id, c.position) >= (target.xact_id, target.position);
    IF applied IS NOT NULL THEN
        RAISE EXCEPTION 'event % is already projected (projection %): voiding it would make the read models '
                        'differ from a rebuild', p_position, applied USING ERRCODE = '22023';
    END IF;
    RETURN vjm.append_event(target.job_id, 'void', jsonb_build_object('position', p_position, 'reason', p_reason));
END
$$;

-- Events applied to the read models, by type: counters the projector adds to in its apply
-- transaction (monitoring's `vjm_transitions_total` reads them, never the log). Rebuild
-- recounts them from the log up to its checkpoint, and verify compares.
CREATE TABLE vjm.transition_counts (
    type   text   PRIMARY KEY,
    events bigint NOT NULL CHECK (events >= 0)
);

-- The durable change feed for dashboards (listeners/subscriptions.py): one row per
-- job per applied batch, numbered by `seq` in commit order. Event positions are
-- handed out before commit, so they cannot be a resume token; `seq` is assigned by
-- the single active projector inside its apply transaction, so a reader that has
-- seen seq N has seen everything up to N. Pruned by age (prune_job_changes).
CREATE TABLE vjm.job_changes (
    seq        bigint PRIMARY KEY,
    xact_id    xid8        NOT NULL,
    position   bigint      NOT NULL,
    job_id     uuid        NOT NULL,
    user_id    text        NOT NULL,
    team_id    uuid,
    status     text        NOT NULL,
    version    integer     NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX job_changes_job ON vjm.job_changes (job_id, seq);
CREATE INDEX job_changes_changed_at ON vjm.job_changes (changed_at);

-- Which of the given change-feed rows the caller may read, as the caller: the row-level
-- security policy user_read on vjm.job_changes (row_level_security.sql), with
-- vjm.current_user_id() and vjm.current_team_ids() of the caller's own identity, decides;
-- the visibility of a row is not re-implemented anywhere. The shared feed hub
-- (listeners/feed_hub.py) reads the feed once as a service and asks this once per
-- subscribed user, acting as that user (store.identity.acting_as); a user removed from a
-- team stops seeing its rows at the next call. No caller can ask about anyone else: the
-- answer is always for vjm.current_user_id().
--
-- SECURITY INVOKER on purpose: as the owner, RLS would show every row. A caller that is
-- not an end user (a service role sees every row) is refused rather than given a wrong
-- answer.
CREATE FUNCTION vjm.job_changes_visible(p_seqs bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF vjm.caller_kind() IS DISTINCT FROM 'user' THEN
        RAISE EXCEPTION 'vjm.job_changes_visible runs as vjm_authenticated: row level security decides'
            USING ERRCODE = '42501';
    END IF;
    RETURN QUERY SELECT c.seq FROM vjm.job_changes c WHERE c.seq = ANY (p_seqs) ORDER BY c.seq;
END
$$;

-- A job as it was just before each given version: its projected row (JSON, NULL when the
-- projection does not have it yet) and the events between that row and the version. A
-- writer folds them with its new event into the job as it is now (store.projections.fold), so a
-- write reads the projection's lag, never the job's whole history. One row per event of
-- that gap, or one row without an event when there is none. SECURITY INVOKER: the
-- caller's row level security applies. `progress_percent` goes out as float8, the value a
-- driver reads from the real column.
CREATE FUNCTION vjm.jobs_before(p_job_ids uuid[], p_versions integer[])
RETURNS TABLE (job_id uuid, base jsonb, "position" bigint, xact_id xid8, version integer, type text,
               from_state text, to_state text, attempt integer, attempts_left smallint, actor text, user_id text,
               team_id uuid, occurred_at timestamptz, data jsonb)
LANGUAGE sql STABLE AS $$
    SELECT w.job_id, b.base, e.position, e.xact_id, e.version, e.type, e.from_state, e.to_state, e.attempt,
           e.attempts_left, e.actor, e.user_id, e.team_id, e.occurred_at, e.data
      FROM unnest(p_job_ids, p_versions) AS w(job_id, version)
      LEFT JOIN LATERAL (
            -- LIMIT 1 (job_id is the key) keeps this a lookup by key per job: flattened into a join,
            -- a plan cached while vjm.jobs was small hashes a sequential scan of the whole table
            -- on every call as it grows (W3 with 10,000 jobs fell below 100 jobs/s).
            SELECT j.version, to_jsonb(j) || jsonb_build_object('progress_percent', j.progress_percent::float8) AS base
              FROM vjm.jobs j WHERE j.job_id = w.job_id LIMIT 1) b ON true
      LEFT JOIN LATERAL (
            SELECT s.* FROM vjm.job_events s
             WHERE s.job_id = w.job_id AND s.version > coalesce(b.version, 0) AND s.version < w.version
             ORDER BY s.version) e ON true
$$;
