-- Read models derived from vjm.job_events by listeners/ (the projector).
-- They are a pure function of the events: dropping them and replaying gives the same rows.

CREATE TABLE vjm.jobs (
    job_id            uuid PRIMARY KEY,
    user_id           text        NOT NULL,
    team_id           uuid,
    status            text        NOT NULL,
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
    progress_percent  real,
    clips_done        integer,
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
CREATE INDEX jobs_processing_activity ON vjm.jobs (last_activity_at) WHERE status = 'processing';

-- Counters per scope ('user' or 'team'), maintained incrementally by the projector.
CREATE TABLE vjm.job_stats (
    scope                 text    NOT NULL CHECK (scope IN ('user', 'team')),
    scope_id              text    NOT NULL,
    user_id               text,
    team_id               uuid,
    queued_jobs           bigint  NOT NULL DEFAULT 0,
    processing_jobs       bigint  NOT NULL DEFAULT 0,
    completed_jobs        bigint  NOT NULL DEFAULT 0,
    failed_jobs           bigint  NOT NULL DEFAULT 0,
    cancelled_jobs        bigint  NOT NULL DEFAULT 0,
    total_processing_time double precision NOT NULL DEFAULT 0,
    timed_jobs            bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id)
);

-- Where each projector has got to, in commit-safe order (xact_id, position).
CREATE TABLE vjm.projection_checkpoints (
    name       text PRIMARY KEY,
    xact_id    xid8        NOT NULL DEFAULT '0'::xid8,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
