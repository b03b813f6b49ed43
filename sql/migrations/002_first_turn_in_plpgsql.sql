-- vjm.first_turn in plpgsql (sql/schema/063_claims.sql): as a LANGUAGE sql function that the planner
-- cannot inline (two sub-selects) it was parsed and planned again at every call from the guard's
-- one-job create; plpgsql keeps its plan for the session. Same signature and result.
SET LOCAL ROLE vjm_owner;

CREATE OR REPLACE FUNCTION vjm.first_turn(p_priority smallint, p_key text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN greatest((SELECT q.turn FROM vjm.run_queue q
                      WHERE q.queued AND q.not_before IS NULL AND q.priority = p_priority
                      ORDER BY q.turn LIMIT 1),
                    (SELECT q.turn + 1 FROM vjm.run_queue q
                      WHERE q.queued AND q.fair_key = p_key AND q.priority = p_priority
                      ORDER BY q.turn DESC LIMIT 1),
                    0);
END
$$;
