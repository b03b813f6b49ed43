-- Read models derived from vjm.job_events by listeners/ (the projector).
-- They are a pure function of the events (listeners/fold.py): dropping them and
-- replaying gives the same rows. Only the projector writes them; rebuild merges a
-- replay into them in place, so the policies and grants added by later migrations stay.

-- The commit-safe horizon for this database: every transaction with a smaller
-- xid has finished, or runs in another database (and so can never append here).
-- The plain pg_snapshot_xmin(pg_current_snapshot()) is cluster-wide: an idle
-- transaction in *any* database of the cluster would stall the projector. A
-- running xid is skipped only when pg_stat_activity shows it belongs to a backend
-- of another database; when that is not visible (no pg_read_all_stats), for
-- prepared transactions and anything unknown, it counts, so the horizon falls
-- back to the snapshot's xmin, never beyond it. STABLE: it sees the snapshot of
-- the calling statement, the same one that then reads the events.
CREATE FUNCTION vjm.projection_horizon() RETURNS xid8
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
    SELECT coalesce(min(x.xid), pg_snapshot_xmax(pg_current_snapshot()))
      FROM pg_snapshot_xip(pg_current_snapshot()) AS x(xid)
     WHERE NOT EXISTS (
        SELECT 1 FROM pg_stat_activity a
         WHERE a.backend_xid = x.xid::xid
           AND a.datid IS NOT NULL
           AND a.datid <> (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
$$;

-- The current state of every job that is not deleted.
CREATE TABLE vjm.jobs (
    job_id            uuid PRIMARY KEY,
    user_id           text        NOT NULL,
    team_id           uuid,
    status            text        NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    attempt           integer     NOT NULL,
    attempts_left     smallint    NOT NULL,
    max_attempts      smallint    NOT NULL,
    worker_id         text,
    original_filename text        NOT NULL,
    original_filesize bigint      NOT NULL,
    clip_count        integer     NOT NULL,
    quality_preset    text        NOT NULL,
    enhancement_level text        NOT NULL,
    platform_target   text        NOT NULL,
    progress_percent  real        NOT NULL DEFAULT 0,
    clips_done        integer     NOT NULL DEFAULT 0,
    output_paths      text[],
    error_message     text,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz,
    processing_time   double precision,
    last_activity_at  timestamptz NOT NULL,
    version           integer     NOT NULL,
    last_position     bigint      NOT NULL
);

CREATE INDEX jobs_user_created ON vjm.jobs (user_id, created_at DESC, job_id DESC);
CREATE INDEX jobs_team_created ON vjm.jobs (team_id, created_at DESC, job_id DESC) WHERE team_id IS NOT NULL;
-- The stuck detector's scan (listeners/stuck_detector.py): only processing jobs are indexed.
CREATE INDEX jobs_processing_activity ON vjm.jobs (last_activity_at) WHERE status = 'processing';

-- Counters per scope ('user' or 'team') over the rows of vjm.jobs, maintained
-- incrementally by the projector (deltas in the same transaction as the rows).
-- Processing time is kept in integer milliseconds so that adding and removing a
-- job's contribution is exact and a recount always matches to the digit.
CREATE TABLE vjm.job_stats (
    scope                   text   NOT NULL CHECK (scope IN ('user', 'team')),
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
    total_processing_time   double precision GENERATED ALWAYS AS (total_processing_ms / 1000.0) STORED,
    average_processing_time double precision GENERATED ALWAYS AS
        (CASE WHEN timed_jobs > 0 THEN total_processing_ms / 1000.0 / timed_jobs END) STORED,
    PRIMARY KEY (scope, scope_id),
    CHECK ((scope = 'user') = (user_id IS NOT NULL) AND (scope = 'team') = (team_id IS NOT NULL))
);

-- Daily history for charts, per scope and UTC day of the event that finished an
-- attempt: completed and failed jobs and the processing seconds they used. It is
-- history, so deleting or retrying a job later does not change past days.
CREATE TABLE vjm.job_stats_daily (
    scope          text   NOT NULL CHECK (scope IN ('user', 'team')),
    scope_id       text   NOT NULL,
    user_id        text,
    team_id        uuid,
    day            date   NOT NULL,
    completed_jobs bigint NOT NULL DEFAULT 0,
    failed_jobs    bigint NOT NULL DEFAULT 0,
    cancelled_jobs bigint NOT NULL DEFAULT 0,
    processing_ms  bigint NOT NULL DEFAULT 0,
    processing_seconds double precision GENERATED ALWAYS AS (processing_ms / 1000.0) STORED,
    PRIMARY KEY (scope, scope_id, day)
);

-- Where each projector has got to, in commit-safe order (xact_id, position), and
-- the last change-feed sequence number it handed out. The active projector locks
-- this row FOR UPDATE in every apply transaction: that serialises appliers (and a
-- rebuild) even if two ever ran at once, and makes change_seq gap-free.
CREATE TABLE vjm.projection_checkpoints (
    name       text PRIMARY KEY,
    xact_id    xid8        NOT NULL DEFAULT '0'::xid8,
    position   bigint      NOT NULL DEFAULT 0,
    change_seq bigint      NOT NULL DEFAULT 0,
    events     bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO vjm.projection_checkpoints (name) VALUES ('main');

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
