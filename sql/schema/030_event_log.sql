-- The log: vjm.job_events, append-only and hash-chained. The one source of truth; every
-- other table is derived from it (read models) or kept beside it in the same transaction
-- (the run queue). Only the write functions (write_api.sql) insert here.
SET LOCAL ROLE vjm_owner;

-- `position` orders appends; `xact_id` lets readers find a commit-safe horizon
-- (vjm.projection_horizon); (job_id, version) is the job's stream, unique and gap-free:
-- the guard computes version from the head, and the unique index refuses the loser of a
-- race. Structural rules live in the guard, not in CHECKs: PostgreSQL compiles every CHECK
-- again for each INSERT statement. The one CHECK (job_events_legal_transition) is a second
-- line of defence against an owner writing by hand.
CREATE TABLE vjm.job_events (
    position      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xact_id       xid8        NOT NULL DEFAULT pg_current_xact_id(),
    job_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    version       integer     NOT NULL,
    type          text        NOT NULL,
    from_state    text,
    to_state      text        NOT NULL,
    attempt       integer     NOT NULL,
    attempts_left smallint    NOT NULL,
    data          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    actor         text        NOT NULL,
    user_id       text        NOT NULL,
    team_id       uuid,
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    prev_hash     bytea,
    hash          bytea       NOT NULL,
    CONSTRAINT job_events_stream UNIQUE (job_id, version)
);

CREATE INDEX job_events_commit_order ON vjm.job_events (xact_id, position);

-- Every stored (type, from_state, to_state) is a row of vjm.transitions (vjm.legal_event is
-- compiled from the table, so the two cannot disagree).
ALTER TABLE vjm.job_events ADD CONSTRAINT job_events_legal_transition
    CHECK (vjm.legal_event(type, from_state, to_state));

-- The tamper-evidence chain: each event hashes its own content and the previous event's
-- hash. Formatting is explicit so that no session setting changes it: the epoch is in
-- microseconds UTC, the rest are canonical text forms. STABLE, not IMMUTABLE, because
-- extract() on timestamptz is stable, and the planner inlines a SQL function only when
-- its body is no more volatile than its label.
CREATE FUNCTION vjm.event_hash(
    prev_hash bytea, job_id uuid, version integer, type text, from_state text,
    to_state text, attempt integer, data jsonb, actor text, user_id text,
    team_id uuid, occurred_at timestamptz
) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(coalesce(prev_hash, '\x'::bytea) || convert_to(concat_ws(chr(31),
        job_id::text, version::text, type, coalesce(from_state, ''), to_state,
        attempt::text, data::text, actor, user_id, coalesce(team_id::text, ''),
        (extract(epoch FROM occurred_at) * 1000000)::bigint::text), 'UTF8'))
$$;

-- Append-only, for everyone including the owner. Statement-level, so that an UPDATE or
-- DELETE matching no row fails too. ENABLE ALWAYS keeps it firing under
-- session_replication_role = replica.
CREATE FUNCTION vjm.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vjm.job_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'VJ400';
END
$$;

CREATE TRIGGER job_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON vjm.job_events
    FOR EACH STATEMENT EXECUTE FUNCTION vjm.refuse_event_change();

ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only;

-- The commit-safe horizon for this database: every transaction with a smaller xid has
-- finished, or runs in another database (and so can never append here). Readers in commit
-- order (the projector) read only below it, ordered by (xact_id, position), so an event
-- that commits late is never skipped. The plain pg_snapshot_xmin(pg_current_snapshot()) is
-- cluster-wide: an idle transaction in any database would stall the projector. A running
-- xid is skipped only when pg_stat_activity shows it belongs to a backend of another
-- database; when that is not visible (no pg_read_all_stats), for prepared transactions and
-- anything unknown, it counts. STABLE: it sees the snapshot of the calling statement, the
-- same one that then reads the events. plpgsql, so its query is planned once per session: as a
-- LANGUAGE sql function (not inlinable: it reads a table) its body was parsed and planned at every
-- call, and a statement planned for custom parameters calls it twice (the planner evaluates a
-- STABLE function to estimate `xact_id < vjm.projection_horizon()`). Callers that are planned
-- per execution take it as a sub-select, `(SELECT vjm.projection_horizon())`, which the planner
-- leaves to the executor (bench/README.md, "Findings: SQL hot spots").
CREATE FUNCTION vjm.projection_horizon() RETURNS xid8
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED AS $$
BEGIN
    RETURN (SELECT coalesce(min(x.xid), pg_snapshot_xmax(pg_current_snapshot()))
              FROM pg_snapshot_xip(pg_current_snapshot()) AS x(xid)
             WHERE NOT EXISTS (
                SELECT 1 FROM pg_stat_activity a
                 WHERE a.backend_xid = x.xid::xid
                   AND a.datid IS NOT NULL
                   AND a.datid <> (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())));
END
$$;
