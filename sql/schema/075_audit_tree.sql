-- The log-wide audit tree (RFC 9162, as Certificate Transparency): every event, in commit
-- order, is a leaf SHA-256(0x00 || event hash) of one append-only Merkle tree. Signed tree
-- heads ({tree_size, root_hash, timestamp, key_id}, Ed25519, signed outside the database
-- with a key it never sees) commit to the first tree_size events: `vjm audit verify --head`
-- recomputes every leaf from the stored events and the root from the leaves, so a deleted,
-- edited, reordered or truncated event changes the root. The algorithms are store/merkle.py.
--
-- Sealing is off the write path: the guard does no Merkle work. `vjm audit seal` (and
-- `sign-head`, which seals first) calls vjm.audit_seal, which appends the leaves of events
-- below vjm.projection_horizon() in (xact_id, position) order, the projector's order, so
-- the order is final: no transaction can still commit an event before a sealed one.
-- The tables below are a cache for proofs and the record of what was archived; they are
-- not trusted: verify recomputes the leaves of every event still in the log.
SET LOCAL ROLE vjm_owner;

-- One row per sealed event: leaf_index is its place in the tree (0, 1, 2, ... gap-free),
-- position and xact_id its place in the log (the sealer's cursor), job_id to name a missing
-- event. Proofs find a job's leaves through vjm.job_events (job_id, version) and position, so
-- job_id needs no index here.
CREATE TABLE vjm.audit_leaves (
    leaf_index bigint      PRIMARY KEY CHECK (leaf_index >= 0),
    position   bigint      NOT NULL UNIQUE,
    xact_id    xid8        NOT NULL,
    job_id     uuid        NOT NULL,
    leaf_hash  bytea       NOT NULL CHECK (octet_length(leaf_hash) = 32)
);

-- Heads as signed outside the database, kept for publication and later proofs. A head is
-- trusted for its signature, not for being here.
CREATE TABLE vjm.audit_heads (
    tree_size  bigint      NOT NULL CHECK (tree_size >= 0),
    root_hash  bytea       NOT NULL CHECK (octet_length(root_hash) = 32),
    timestamp  bigint      NOT NULL,  -- milliseconds since the epoch, as signed
    key_id     text        NOT NULL,  -- hex SHA-256 of the raw public key
    public_key bytea       NOT NULL CHECK (octet_length(public_key) = 32),
    signature  bytea       NOT NULL CHECK (octet_length(signature) = 64),
    PRIMARY KEY (key_id, tree_size, timestamp)
);

-- Retention: events of leaves below archived_below may be gone from vjm.job_events (moved to
-- an archive whose SHA-256 is archive_digest). Verify then takes those leaves' hashes from
-- vjm.audit_leaves (still covered by the signed root: a changed or missing leaf changes it)
-- and reports the archived range; every event at or above the boundary must be present.
CREATE TABLE vjm.audit_archives (
    archived_below bigint      PRIMARY KEY CHECK (archived_below > 0),
    archived_at    timestamptz NOT NULL DEFAULT now(),
    archive_digest bytea       NOT NULL CHECK (octet_length(archive_digest) = 32)
);

-- Append-only, like the log: the leaves and heads are a record, not state.
CREATE FUNCTION vjm.refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = 'VJ400';
END
$$;

CREATE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON vjm.audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION vjm.refuse_audit_change();
ALTER TABLE vjm.audit_leaves ENABLE ALWAYS TRIGGER audit_leaves_append_only;
CREATE TRIGGER audit_heads_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON vjm.audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION vjm.refuse_audit_change();
ALTER TABLE vjm.audit_heads ENABLE ALWAYS TRIGGER audit_heads_append_only;
CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON vjm.audit_archives
    FOR EACH STATEMENT EXECUTE FUNCTION vjm.refuse_audit_change();
ALTER TABLE vjm.audit_archives ENABLE ALWAYS TRIGGER audit_archives_append_only;

-- The sequencer: append the leaves of up to max_leaves committed events after the last
-- sealed one, below the horizon, in commit order. One sealer at a time (EXCLUSIVE lets
-- readers through); returns the tree size after sealing. Cost: one index range scan of
-- vjm.job_events on (xact_id, position) and one SHA-256 per event.
CREATE FUNCTION vjm.audit_seal(max_leaves integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    last_index bigint;
    last_xact  xid8;
    last_pos   bigint;
    sealed     bigint;
BEGIN
    IF max_leaves IS NULL OR max_leaves < 1 THEN
        RAISE EXCEPTION 'max_leaves must be positive' USING ERRCODE = '22023';
    END IF;
    LOCK TABLE vjm.audit_leaves IN EXCLUSIVE MODE;
    SELECT l.leaf_index, l.xact_id, l.position INTO last_index, last_xact, last_pos
      FROM vjm.audit_leaves l ORDER BY l.leaf_index DESC LIMIT 1;
    INSERT INTO vjm.audit_leaves (leaf_index, position, xact_id, job_id, leaf_hash)
    SELECT coalesce(last_index, -1) + row_number() OVER (ORDER BY e.xact_id, e.position),
           e.position, e.xact_id, e.job_id, sha256('\x00'::bytea || e.hash)
      FROM (SELECT e.xact_id, e.position, e.job_id, e.hash
              FROM vjm.job_events e
             WHERE (e.xact_id, e.position) > (coalesce(last_xact, '0'::xid8), coalesce(last_pos, 0))
               AND e.xact_id < vjm.projection_horizon()
             ORDER BY e.xact_id, e.position
             LIMIT max_leaves) AS e;
    GET DIAGNOSTICS sealed = ROW_COUNT;
    RETURN coalesce(last_index, -1) + 1 + sealed;
END
$$;

-- Grants: admins run the auditor's commands (seal, sign, verify, prove); the leaves name
-- every tenant's jobs, so no other run-time role reads them.
GRANT SELECT ON vjm.audit_leaves, vjm.audit_archives TO vjm_admin;
GRANT SELECT, INSERT ON vjm.audit_heads TO vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.audit_seal(integer) TO vjm_admin;

ALTER TABLE vjm.audit_leaves   ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.audit_heads    ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE vjm.audit_archives ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON vjm.audit_leaves TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.audit_leaves FOR SELECT TO vjm_admin USING (true);
CREATE POLICY owner_all ON vjm.audit_heads TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.audit_heads FOR SELECT TO vjm_admin USING (true);
CREATE POLICY admin_append ON vjm.audit_heads FOR INSERT TO vjm_admin WITH CHECK (true);
CREATE POLICY owner_all ON vjm.audit_archives TO vjm_owner USING (true) WITH CHECK (true);
CREATE POLICY admin_read ON vjm.audit_archives FOR SELECT TO vjm_admin USING (true);
