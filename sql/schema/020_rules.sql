-- The rules of the job machine, as tables. Each must equal its source in statemachine/
-- (tests/integration/test_machine_agrees_with_database.py compares them):
--   vjm.transitions    statemachine.RULES: which trigger leads from which state to which
--   vjm.trigger_rules  statemachine.PROCESSOR_TRIGGERS, ADMIN_TRIGGERS and FENCED_TRIGGERS
--   vjm.job_defaults   statemachine.payloads.DEFAULT_MAX_ATTEMPTS
-- The functions at the end are compiled from these tables when the schema is built, so
-- that the write path evaluates a rule as an expression instead of a lookup.
SET LOCAL ROLE vjm_owner;

CREATE TABLE vjm.transitions (
    trigger    text NOT NULL,
    from_state text NOT NULL,
    to_state   text NOT NULL,
    guard      text CHECK (guard IN ('has_attempts_left', 'attempts_exhausted')),
    PRIMARY KEY (trigger, from_state, to_state)
);

INSERT INTO vjm.transitions (trigger, from_state, to_state, guard) VALUES
    ('create',          'absent',     'queued',     NULL),
    ('start',           'queued',     'processing', 'has_attempts_left'),
    ('progress',        'processing', 'processing', NULL),
    ('complete',        'processing', 'completed',  NULL),
    ('fail',            'processing', 'failed',     NULL),
    ('cancel',          'queued',     'cancelled',  NULL),
    ('cancel',          'processing', 'cancelled',  NULL),
    ('retry',           'failed',     'queued',     NULL),
    ('retry',           'cancelled',  'queued',     NULL),
    ('time_out',        'processing', 'queued',     'has_attempts_left'),
    ('time_out',        'processing', 'failed',     'attempts_exhausted'),
    ('requeue',         'processing', 'queued',     'has_attempts_left'),
    ('requeue',         'processing', 'failed',     'attempts_exhausted'),
    ('release',         'processing', 'queued',     NULL),
    ('update_metadata', 'queued',     'queued',     NULL),
    ('update_metadata', 'processing', 'processing', NULL),
    ('update_metadata', 'completed',  'completed',  NULL),
    ('update_metadata', 'failed',     'failed',     NULL),
    ('update_metadata', 'cancelled',  'cancelled',  NULL),
    ('reschedule',      'queued',     'queued',     NULL),
    ('delete',          'queued',     'deleted',    NULL),
    ('delete',          'completed',  'deleted',    NULL),
    ('delete',          'failed',     'deleted',    NULL),
    ('delete',          'cancelled',  'deleted',    NULL),
    ('void',            'queued',     'queued',     NULL),
    ('void',            'processing', 'processing', NULL),
    ('void',            'completed',  'completed',  NULL),
    ('void',            'failed',     'failed',     NULL),
    ('void',            'cancelled',  'cancelled',  NULL),
    ('void',            'deleted',    'deleted',    NULL);

-- Who fires each trigger (admins fire every one; 'admin': only admins), whether it carries
-- the attempt token (a fenced trigger that names an attempt other than the job's current one
-- is refused), and whether it is a worker's report on its own attempt (written by a trusted
-- caller that names no actor, it records the worker that started the attempt).
CREATE TABLE vjm.trigger_rules (
    trigger       text    PRIMARY KEY,
    fired_by      text    NOT NULL CHECK (fired_by IN ('processor', 'user', 'admin')),
    fenced        boolean NOT NULL,
    worker_report boolean NOT NULL
);

INSERT INTO vjm.trigger_rules (trigger, fired_by, fenced, worker_report) VALUES
    ('create',          'user',      false, false),
    ('start',           'processor', false, false),
    ('progress',        'processor', true,  true),
    ('complete',        'processor', true,  true),
    ('fail',            'processor', true,  true),
    ('time_out',        'processor', true,  false),
    ('requeue',         'processor', true,  true),
    ('release',         'processor', true,  true),
    ('cancel',          'user',      false, false),
    ('retry',           'user',      false, false),
    ('update_metadata', 'user',      false, false),
    ('reschedule',      'user',      false, false),
    ('delete',          'user',      false, false),
    ('void',            'admin',     false, false);

-- Defaults a create takes when its payload leaves them out. One row.
CREATE TABLE vjm.job_defaults (
    max_attempts smallint NOT NULL,
    one_row      boolean  PRIMARY KEY DEFAULT true CHECK (one_row)
);

INSERT INTO vjm.job_defaults (max_attempts) VALUES (3);

-- Compiled rules, IMMUTABLE LANGUAGE sql so that the planner inlines them:
--   vjm.next_state(trigger, from_state, attempts_left)  the state the trigger leads to, NULL if illegal
--   vjm.fired_by_processor(trigger)                     true for processor triggers
--   vjm.fired_by_user(trigger)                          true for the triggers end users fire
--   vjm.fenced(trigger)                                 true for triggers that carry the attempt token
--   vjm.worker_report(trigger)                          true for a worker's reports on its own attempt
--   vjm.default_max_attempts()                          the attempt budget of a create without one
--   vjm.moves_in_queue(trigger)                         true for triggers that take a job into or out
--                                                       of the run queue or change its place there,
--                                                       or start or end its processing
--   vjm.legal_event(type, from_state, to_state)         true for a row of vjm.transitions (the log's CHECK;
--                                                       plpgsql, so that it is not parsed again per INSERT)
-- PostgreSQL prepares every operator of an expression again in each transaction (a catalog
-- lookup and an ACL check each), and builds the hash table of a long IN list again too. So the
-- transition table is one jsonb constant, looked up by path: next_state reads
-- {trigger: {from_state: {budget: to_state}}}, budget being 'left' (attempts_left > 0), 'none'
-- (= 0) or 'other' (NULL); a guarded row is under its budget only, an unguarded one under all three.
DO $$
DECLARE
    transitions jsonb;
    legal jsonb;
    processor text;
    users text;
    fenced text;
    reports text;
    queue_movers text;
    budget smallint;
BEGIN
    SELECT jsonb_object_agg(f.trigger, f.states) INTO transitions
      FROM (SELECT t.trigger, jsonb_object_agg(t.from_state, t.targets) AS states
              FROM (SELECT t.trigger, t.from_state, jsonb_object_agg(b.budget, t.to_state) AS targets
                      FROM vjm.transitions t
                      JOIN (VALUES ('left', 'has_attempts_left'), ('none', 'attempts_exhausted'), ('other', NULL))
                           AS b(budget, guard) ON t.guard IS NULL OR t.guard = b.guard
                     GROUP BY t.trigger, t.from_state) t
             GROUP BY t.trigger) f;
    -- {type: {from_state ('' for a create, whose from_state is NULL): [to_state, ...]}}
    SELECT jsonb_object_agg(f.trigger, f.states) INTO legal
      FROM (SELECT t.trigger, jsonb_object_agg(t.from_state, t.targets) AS states
              FROM (SELECT t.trigger, CASE t.from_state WHEN 'absent' THEN '' ELSE t.from_state END AS from_state,
                           jsonb_agg(t.to_state ORDER BY t.to_state) AS targets
                      FROM vjm.transitions t GROUP BY t.trigger, CASE t.from_state WHEN 'absent' THEN '' ELSE t.from_state END) t
             GROUP BY t.trigger) f;
    SELECT string_agg(quote_literal(r.trigger), ', ' ORDER BY r.trigger) FILTER (WHERE r.fired_by = 'processor'),
           string_agg(quote_literal(r.trigger), ', ' ORDER BY r.trigger) FILTER (WHERE r.fired_by = 'user'),
           string_agg(quote_literal(r.trigger), ', ' ORDER BY r.trigger) FILTER (WHERE r.fenced),
           string_agg(quote_literal(r.trigger), ', ' ORDER BY r.trigger) FILTER (WHERE r.worker_report)
      INTO processor, users, fenced, reports FROM vjm.trigger_rules r;
    SELECT d.max_attempts INTO budget FROM vjm.job_defaults d;
    -- Into or out of `queued`, or into or out of `processing` (what claim caps count).
    SELECT string_agg(DISTINCT quote_literal(t.trigger), ', ') INTO queue_movers FROM vjm.transitions t
     WHERE t.from_state <> 'absent'
       AND ('queued' IN (t.from_state, t.to_state) OR (t.from_state = 'processing') <> (t.to_state = 'processing'));
    EXECUTE format('CREATE FUNCTION vjm.next_state(trigger text, from_state text, attempts_left smallint) '
                   'RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT %L::jsonb #>> ARRAY[trigger, '
                   'from_state, CASE WHEN attempts_left > 0 THEN ''left'' WHEN attempts_left = 0 THEN ''none'' '
                   'ELSE ''other'' END] $f$', transitions);
    EXECUTE format('CREATE FUNCTION vjm.fired_by_processor(trigger text) RETURNS boolean '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT coalesce(trigger IN (%s), false) $f$', processor);
    EXECUTE format('CREATE FUNCTION vjm.fired_by_user(trigger text) RETURNS boolean '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT coalesce(trigger IN (%s), false) $f$', users);
    EXECUTE format('CREATE FUNCTION vjm.fenced(trigger text) RETURNS boolean '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT coalesce(trigger IN (%s), false) $f$', fenced);
    EXECUTE format('CREATE FUNCTION vjm.worker_report(trigger text) RETURNS boolean '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT coalesce(trigger IN (%s), false) $f$', reports);
    EXECUTE format('CREATE FUNCTION vjm.default_max_attempts() RETURNS smallint '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT %s::smallint $f$', budget);
    EXECUTE format('CREATE FUNCTION vjm.legal_event(type text, from_state text, to_state text) RETURNS boolean '
                   'LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$ BEGIN RETURN coalesce((%L::jsonb -> type '
                   '-> coalesce(from_state, '''')) ? to_state, false); END $f$', legal);
    EXECUTE format('CREATE FUNCTION vjm.moves_in_queue(trigger text) RETURNS boolean '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT coalesce(trigger IN (%s), false) $f$',
                   queue_movers);
END
$$;
