-- Named queries of the log-wide audit tree (sql/schema/075_audit_tree.sql, store/audit.py).

-- audit_seal --
-- Append the leaves of up to :max_leaves committed events after the last sealed one; returns the tree size.
SELECT vjm.audit_seal(:max_leaves::integer) AS tree_size;

-- audit_tree_state --
-- How many leaves are sealed, and the archive boundary (leaves below it may have no event any more).
SELECT (SELECT coalesce(max(leaf_index) + 1, 0) FROM vjm.audit_leaves) AS tree_size,
       (SELECT coalesce(max(archived_below), 0) FROM vjm.audit_archives) AS archived_below;

-- audit_leaf_hashes --
-- The sealed leaf hashes from :start_index (inclusive) to :end_index (exclusive), in tree order (a cursor reads them).
SELECT leaf_index, leaf_hash FROM vjm.audit_leaves WHERE leaf_index >= :start_index AND leaf_index < :end_index ORDER BY leaf_index;

-- audit_leaf_at --
-- The sealed leaf at index :leaf_index and whether its event is still in the log (for verify's diagnostics).
SELECT l.leaf_index, l.position, l.xact_id, l.job_id, l.leaf_hash, e.position IS NOT NULL AS present
  FROM vjm.audit_leaves l LEFT JOIN vjm.job_events e ON e.position = l.position
 WHERE l.leaf_index = :leaf_index;

-- audit_events_in_commit_order --
-- Events after the cursor (:after_xact_id, :after_position) in commit order, at most :limit: the stored hash, the hash
-- recomputed from the content, and the leaf sealed for the same position (a cursor reads them).
SELECT e.xact_id, e.position, e.job_id, e.version, e.hash,
       vjm.event_hash(e.prev_hash, e.job_id, e.version, e.type, e.from_state, e.to_state, e.attempt, e.data,
                      e.actor, e.user_id, e.team_id, e.occurred_at) AS recomputed,
       l.leaf_index AS sealed_index, l.leaf_hash AS sealed_leaf
  FROM vjm.job_events e LEFT JOIN vjm.audit_leaves l ON l.position = e.position
 WHERE (e.xact_id, e.position) > (:after_xact_id::xid8, :after_position::bigint)
 ORDER BY e.xact_id, e.position
 LIMIT :limit;

-- audit_job_leaves --
-- One job's sealed events below tree size :tree_size, in version order, with their content for a proof.
SELECT l.leaf_index, e.position, e.version, e.type, e.from_state, e.to_state, e.actor, e.occurred_at,
       e.prev_hash, e.hash, l.leaf_hash
  FROM vjm.job_events e JOIN vjm.audit_leaves l ON l.position = e.position
 WHERE e.job_id = :job_id AND l.leaf_index < :tree_size
 ORDER BY e.version;

-- audit_head_insert --
-- Keep a signed head for publication (its signature, not this table, makes it trustworthy).
INSERT INTO vjm.audit_heads (tree_size, root_hash, timestamp, key_id, public_key, signature)
VALUES (:tree_size, :root_hash, :timestamp, :key_id, :public_key, :signature) ON CONFLICT DO NOTHING;

-- audit_head_latest --
-- The newest kept head (largest tree, then newest).
SELECT tree_size, root_hash, timestamp, public_key, signature
  FROM vjm.audit_heads ORDER BY tree_size DESC, timestamp DESC LIMIT 1;
