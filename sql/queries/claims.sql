-- The claim policy (sql/schema/063_claims.sql): pauses, caps, who takes turns, and the history of their changes.

-- claim_pause --
-- Pause claims for a platform, or for every platform (NULL); the change as recorded.
SELECT * FROM vjm.pause_claims(:platform::text, :actor::text, :reason::text);

-- claim_resume --
-- Resume claims for a platform, or (NULL) lift every pause; the change as recorded.
SELECT * FROM vjm.resume_claims(:platform::text, :actor::text, :reason::text);

-- claim_set_cap --
-- Cap (or, with a NULL max, uncap) the jobs processing at once under one user, team or platform ('*': each).
SELECT * FROM vjm.set_claim_cap(:kind::text, :key::text, :max_processing::integer, :actor::text, :reason::text);

-- claim_set_fair_share --
-- Who takes turns from now on: 'user' or 'team'.
SELECT * FROM vjm.set_fair_share(:fair_share::text, :actor::text, :reason::text);

-- claim_policy_settings --
-- The claim policy now: who takes turns, the pauses, the caps (as JSON arrays).
SELECT s.fair_share,
       coalesce((SELECT jsonb_agg(jsonb_build_object('platform', p.platform, 'paused_at', p.paused_at,
                                                     'actor', p.actor, 'reason', p.reason) ORDER BY p.platform)
                   FROM vjm.claim_pauses p), '[]') AS pauses,
       coalesce((SELECT jsonb_agg(jsonb_build_object('kind', c.kind, 'key', c.key,
                                                     'max_processing', c.max_processing) ORDER BY c.kind, c.key)
                   FROM vjm.claim_caps c), '[]') AS caps
  FROM vjm.claim_settings s;

-- claim_policy_history --
-- The newest :limit changes of the claim policy, newest first.
SELECT seq, changed_at, actor, setting, scope, value, reason
  FROM vjm.queue_settings_history
 ORDER BY seq DESC
 LIMIT :limit;
