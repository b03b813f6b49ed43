-- The payload rules of every trigger, as tables. They must equal statemachine/payload_rules.py
-- (tests/integration/test_payload_rules.py compares the rows, and feeds hostile payloads to
-- both enforcers); after a rule change, `python -m statemachine.payload_rules` prints the
-- INSERTs below.
--   vjm.payload_chars   what a string may not contain: one regular expression per character
--                       class (explicit code point ranges, the same text Python's re reads)
--   vjm.payload_rules   per trigger and key: JSON type, required, nullable (null = not given),
--                       bounds, lengths, item count, character class, choices
--   vjm.payload_shapes  per trigger: whether at least one key must carry a value
-- vjm.payload_ok(trigger, data) is compiled from them when the schema is built; the guard
-- (write_api.sql: vjm.decide_create, vjm.decide_transition) asks it for every caller, so
-- nothing the fold (store/projections/fold.py) cannot read is ever stored.
SET LOCAL ROLE vjm_owner;

CREATE TABLE vjm.payload_chars (
    chars  text PRIMARY KEY,
    refuse text NOT NULL  -- a match refuses the string
);

CREATE TABLE vjm.payload_rules (
    trigger    text    NOT NULL,
    key        text    NOT NULL,
    kind       text    NOT NULL CHECK (kind IN ('string', 'choice', 'integer', 'number', 'strings')),
    required   boolean NOT NULL,
    nullable   boolean NOT NULL CHECK (NOT (required AND nullable)),
    minimum    numeric,
    maximum    numeric,
    min_length integer,
    max_length integer,
    max_items  integer,
    chars      text REFERENCES vjm.payload_chars,
    choices    text[],
    PRIMARY KEY (trigger, key),
    CHECK ((kind IN ('integer', 'number')) = (minimum IS NOT NULL AND maximum IS NOT NULL)),
    CHECK ((kind IN ('string', 'strings')) = (chars IS NOT NULL AND max_length IS NOT NULL)),
    CHECK ((kind = 'strings') = (max_items IS NOT NULL)),
    CHECK ((kind = 'choice') = (choices IS NOT NULL))
);

CREATE TABLE vjm.payload_shapes (
    trigger      text    PRIMARY KEY,
    at_least_one boolean NOT NULL
);

INSERT INTO vjm.payload_chars (chars, refuse) VALUES
    ('name', '[/\\\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ue000-\uf8ff\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000f0000-\U000ffffd\U00100000-\U0010fffd]|\A[\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]*\Z|\A\.\.?\Z'),
    ('line', '[\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ue000-\uf8ff\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000f0000-\U000ffffd\U00100000-\U0010fffd]'),
    ('key', '[^\u0021-\u007e]'),
    ('text', '[\u0000\ud800-\udfff]'),
    ('timestamp', '\A(?!(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?Z\Z)');

INSERT INTO vjm.payload_rules (trigger, key, kind, required, nullable, minimum, maximum, min_length,
                               max_length, max_items, chars, choices) VALUES
    ('create', 'original_filename', 'string', true, false, NULL, NULL, 1, 255, NULL, 'name', NULL),
    ('create', 'original_filesize', 'integer', true, false, 0, 9007199254740992, NULL, NULL, NULL, NULL, NULL),
    ('create', 'clip_count', 'integer', true, false, 1, 50, NULL, NULL, NULL, NULL, NULL),
    ('create', 'quality_preset', 'choice', true, false, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['draft', 'standard', 'pro', 'ultra']::text[]),
    ('create', 'enhancement_level', 'choice', true, false, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['none', 'basic', 'advanced', 'maximum']::text[]),
    ('create', 'platform_target', 'choice', true, false, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['tiktok', 'instagram', 'youtube_shorts']::text[]),
    ('create', 'idempotency_key', 'string', false, false, NULL, NULL, 1, 200, NULL, 'key', NULL),
    ('create', 'max_attempts', 'integer', false, false, 1, 20, NULL, NULL, NULL, NULL, NULL),
    ('create', 'priority', 'integer', false, false, 0, 9, NULL, NULL, NULL, NULL, NULL),
    ('create', 'run_at', 'string', false, true, NULL, NULL, 1, 27, NULL, 'timestamp', NULL),
    ('start', 'worker_id', 'string', false, true, NULL, NULL, 1, 128, NULL, 'text', NULL),
    ('progress', 'percent', 'number', false, true, 0, 100, NULL, NULL, NULL, NULL, NULL),
    ('progress', 'clips_done', 'integer', false, true, 0, 50, NULL, NULL, NULL, NULL, NULL),
    ('progress', 'phase', 'string', false, true, NULL, NULL, 1, 64, NULL, 'line', NULL),
    ('complete', 'output_paths', 'strings', true, false, NULL, NULL, 1, 1024, 100, 'line', NULL),
    ('complete', 'processing_time', 'number', false, true, 0, 604800, NULL, NULL, NULL, NULL, NULL),
    ('fail', 'error', 'string', true, false, NULL, NULL, 1, 4000, NULL, 'text', NULL),
    ('cancel', 'reason', 'string', false, true, NULL, NULL, 0, 500, NULL, 'text', NULL),
    ('retry', 'reason', 'string', false, true, NULL, NULL, 0, 500, NULL, 'text', NULL),
    ('time_out', 'reason', 'string', false, true, NULL, NULL, 0, 500, NULL, 'text', NULL),
    ('time_out', 'idle_seconds', 'number', false, true, 0, 1000000000, NULL, NULL, NULL, NULL, NULL),
    ('time_out', 'lease_expires_at', 'string', false, true, NULL, NULL, 1, 64, NULL, 'line', NULL),
    ('time_out', 'lease_seconds', 'number', false, true, 0, 86400, NULL, NULL, NULL, NULL, NULL),
    ('requeue', 'error', 'string', false, true, NULL, NULL, 1, 4000, NULL, 'text', NULL),
    ('release', 'reason', 'string', false, true, NULL, NULL, 0, 500, NULL, 'text', NULL),
    ('requeue', 'retry_after', 'number', false, true, 0, 604800, NULL, NULL, NULL, NULL, NULL),
    ('update_metadata', 'original_filename', 'string', false, true, NULL, NULL, 1, 255, NULL, 'name', NULL),
    ('update_metadata', 'clip_count', 'integer', false, true, 1, 50, NULL, NULL, NULL, NULL, NULL),
    ('update_metadata', 'quality_preset', 'choice', false, true, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['draft', 'standard', 'pro', 'ultra']::text[]),
    ('update_metadata', 'enhancement_level', 'choice', false, true, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['none', 'basic', 'advanced', 'maximum']::text[]),
    ('update_metadata', 'platform_target', 'choice', false, true, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['tiktok', 'instagram', 'youtube_shorts']::text[]),
    ('reschedule', 'priority', 'integer', false, true, 0, 9, NULL, NULL, NULL, NULL, NULL),
    ('reschedule', 'run_at', 'string', false, true, NULL, NULL, 1, 27, NULL, 'timestamp', NULL),
    ('delete', 'reason', 'string', false, true, NULL, NULL, 0, 500, NULL, 'text', NULL),
    ('void', 'position', 'integer', true, false, 1, 9007199254740991, NULL, NULL, NULL, NULL, NULL),
    ('void', 'reason', 'string', false, true, NULL, NULL, 0, 500, NULL, 'text', NULL);

INSERT INTO vjm.payload_shapes (trigger, at_least_one) VALUES
    ('create', false),
    ('start', false),
    ('progress', false),
    ('complete', false),
    ('fail', false),
    ('cancel', false),
    ('retry', false),
    ('time_out', false),
    ('requeue', false),
    ('release', false),
    ('update_metadata', true),
    ('reschedule', true),
    ('delete', false),
    ('void', false);

-- An array of strings (complete's output_paths): at most max_items, each a string of
-- min_length..max_length characters that `refuse` does not match. A loop of simple
-- expressions, not a query: a query would be planned and started on every call.
CREATE FUNCTION vjm.payload_strings_ok(items jsonb, max_items integer, min_length integer, max_length integer,
                                       refuse text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    item jsonb;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' OR jsonb_array_length(items) > max_items THEN
        RETURN false;
    END IF;
    FOR i IN 0 .. jsonb_array_length(items) - 1 LOOP
        item := items -> i;
        IF jsonb_typeof(item) <> 'string' OR length(item #>> '{}') NOT BETWEEN min_length AND max_length
           OR (item #>> '{}') ~ refuse THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

-- An instant that the timestamp pattern lets through names a day that exists (2030-02-31 does
-- not): the cast decides. Asked only of strings that match the pattern, so the exception block
-- (a subtransaction) is paid by creates that name a run_at, nothing else.
CREATE FUNCTION vjm.real_instant(value text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN value::timestamptz IS NOT NULL;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN false;
END
$$;

-- vjm.payload_ok(trigger, data): true when data is a JSON object that keeps the rules of
-- trigger (only its keys; each present key of its type, within its bounds and characters;
-- required keys present and not null; for some triggers at least one key with a value), false
-- otherwise, and for an unknown trigger.
--
-- Compiled into one plpgsql branch per trigger, most frequent first. PostgreSQL prepares every
-- function call of an expression again in each transaction (an ACL check and a catalog lookup
-- per call), so each rule is written with as few calls as the jsonb operators allow:
--   a nullable key is read from `stripped` (jsonb_strip_nulls(data)), where null is absent;
--   number   v BETWEEN 'min' AND 'max' as jsonb: jsonb orders every number between all strings
--            and null (below) and all booleans, arrays and objects (above), so this is the type
--            check too;
--   integer  a number, as above, whose JSON text has no decimal point (2.0 is not an integer: it
--            prints as 2.0; numbers never print with an exponent);
--   choice   v is one of the choices as jsonb strings;
--   string   a JSON string of min_length..max_length characters (length <@ a constant range: one
--            call, not BETWEEN's two) that `refuse` does not match (an instant: and vjm.real_instant);
--   strings  vjm.payload_strings_ok.
-- A key that is absent reads as SQL NULL: coalesce(rule, true) lets it pass, and required
-- keys are asked for by name (data ?& required).
DO $$
DECLARE
    branches text;
BEGIN
    SELECT string_agg(format('WHEN %L THEN%s RETURN coalesce(%s, false);', s.trigger,
                             CASE WHEN b.strips THEN ' stripped := jsonb_strip_nulls(data);' ELSE '' END, b.expr),
                      E'\n        '
                      ORDER BY array_position(ARRAY['progress', 'create', 'start', 'complete', 'fail', 'time_out',
                                                    'update_metadata', 'cancel', 'retry', 'delete'], s.trigger),
                               s.trigger)
      INTO branches
      FROM vjm.payload_shapes s
     CROSS JOIN LATERAL (
        SELECT bool_or(r.nullable) OR s.at_least_one AS strips,
               concat_ws(' AND ', 'jsonb_typeof(data) = ''object''',
                         format('(data - %L::text[]) = ''{}''::jsonb', coalesce(array_agg(r.key ORDER BY r.key), '{}')),
                         CASE WHEN bool_or(r.required) THEN format('data ?& %L::text[]',
                                                                   array_agg(r.key ORDER BY r.key) FILTER (WHERE r.required))
                         END,
                         string_agg(CASE WHEN r.required THEN k.rule ELSE format('coalesce(%s, true)', k.rule) END,
                                    ' AND ' ORDER BY r.key),
                         CASE WHEN s.at_least_one THEN 'stripped <> ''{}''::jsonb' END) AS expr
          FROM vjm.payload_rules r
          LEFT JOIN vjm.payload_chars c ON c.chars = r.chars
         CROSS JOIN LATERAL (SELECT format('(%s -> %L)', CASE WHEN r.nullable THEN 'stripped' ELSE 'data' END, r.key) AS v,
                                    format('(%s ->> %L)', CASE WHEN r.nullable THEN 'stripped' ELSE 'data' END, r.key) AS t) x
         CROSS JOIN LATERAL (SELECT CASE r.kind
            WHEN 'number' THEN format('%s BETWEEN %L::jsonb AND %L::jsonb', x.v, r.minimum, r.maximum)
            WHEN 'integer' THEN format('(%1$s BETWEEN %2$L::jsonb AND %3$L::jsonb AND strpos(%1$s::text, ''.'') = 0)',
                                       x.v, r.minimum, r.maximum)
            WHEN 'choice' THEN format('%s = ANY (%L::jsonb[])', x.v,
                                      (SELECT array_agg(to_jsonb(o.choice) ORDER BY o.n)
                                         FROM unnest(r.choices) WITH ORDINALITY AS o(choice, n)))
            WHEN 'string' THEN format('CASE jsonb_typeof(%1$s) WHEN ''string'' THEN length(%2$s) <@ int4range(%3$s, %4$s, ''[]'') '
                                      'AND %2$s !~ %5$L%7$s ELSE %6$s END', x.v, x.t, coalesce(r.min_length, 0),
                                      r.max_length, c.refuse,
                                      CASE WHEN r.required THEN 'false' ELSE x.v || ' IS NULL' END,
                                      CASE WHEN r.chars = 'timestamp' THEN format(' AND vjm.real_instant(%s)', x.t) END)
            WHEN 'strings' THEN format('vjm.payload_strings_ok(%s, %s, %s, %s, %L)', x.v, r.max_items,
                                       coalesce(r.min_length, 0), r.max_length, c.refuse)
            END AS rule) k
         WHERE r.trigger = s.trigger
     ) b;
    EXECUTE format(E'CREATE FUNCTION vjm.payload_ok(trigger text, data jsonb) RETURNS boolean\n'
                   || E'LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$\nDECLARE\n    stripped jsonb;\nBEGIN\n'
                   || E'    CASE trigger\n        %s\n'
                   || E'        ELSE RETURN false;\n    END CASE;\nEND\n$f$', branches);
END
$$;
