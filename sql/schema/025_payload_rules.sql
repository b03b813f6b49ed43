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
-- nothing the fold (listeners/fold.py) cannot read is ever stored.
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
    ('text', '[\u0000\ud800-\udfff]');

INSERT INTO vjm.payload_rules (trigger, key, kind, required, nullable, minimum, maximum, min_length,
                               max_length, max_items, chars, choices) VALUES
    ('create', 'original_filename', 'string', true, false, NULL, NULL, 1, 255, NULL, 'name', NULL),
    ('create', 'original_filesize', 'integer', true, false, 0, 9007199254740992, NULL, NULL, NULL, NULL, NULL),
    ('create', 'clip_count', 'integer', true, false, 1, 50, NULL, NULL, NULL, NULL, NULL),
    ('create', 'quality_preset', 'choice', true, false, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['draft', 'standard', 'pro', 'ultra']::text[]),
    ('create', 'enhancement_level', 'choice', true, false, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['none', 'basic', 'advanced', 'maximum']::text[]),
    ('create', 'platform_target', 'choice', true, false, NULL, NULL, NULL, NULL, NULL, NULL, ARRAY['tiktok', 'instagram', 'youtube_shorts']::text[]),
    ('create', 'max_attempts', 'integer', false, false, 1, 20, NULL, NULL, NULL, NULL, NULL),
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
    ('delete', false),
    ('void', false);

-- An array of strings (complete's output_paths): at most max_items, each a string of
-- min_length..max_length characters that `refuse` does not match. Not inlined (it reads the
-- array with a sub-select), so vjm.payload_ok stays a simple expression for the others.
CREATE FUNCTION vjm.payload_strings_ok(items jsonb, max_items integer, min_length integer, max_length integer,
                                       refuse text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN jsonb_array_length(items) <= max_items
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(items) AS i(item)
                        WHERE jsonb_typeof(i.item) <> 'string'
                           OR length(i.item #>> '{}') NOT BETWEEN min_length AND max_length
                           OR (i.item #>> '{}') ~ refuse);
END
$$;

-- vjm.payload_ok(trigger, data): true when data is a JSON object that keeps the rules of
-- trigger (only its keys; each present key of its type, within its bounds and characters;
-- required keys present and not null; for some triggers at least one key with a value), false
-- otherwise, and for an unknown trigger. plpgsql with one RETURN per trigger, most frequent
-- first: a transaction compiles only the branch it runs, and each branch is one small
-- expression with no sub-select (one CASE on the JSON type per key).
DO $$
DECLARE
    branches text;
BEGIN
    SELECT string_agg(format('WHEN %L THEN RETURN coalesce(%s, false);', s.trigger, b.expr), E'\n        '
                      ORDER BY array_position(ARRAY['progress', 'start', 'complete', 'fail', 'create', 'time_out',
                                                    'update_metadata', 'cancel', 'retry', 'delete'], s.trigger),
                               s.trigger)
      INTO branches
      FROM vjm.payload_shapes s
     CROSS JOIN LATERAL (
        SELECT concat_ws(' AND ', 'jsonb_typeof(data) = ''object''',
                         format('(data - %L::text[]) = ''{}''::jsonb', coalesce(array_agg(r.key ORDER BY r.key), '{}')),
                         string_agg(format('CASE coalesce(jsonb_typeof(data -> %1$L), ''absent'') WHEN %2$s ELSE false END',
                                           r.key, k.cases), ' AND ' ORDER BY r.key),
                         CASE WHEN s.at_least_one THEN format('jsonb_strip_nulls(data) ?| %L::text[]',
                                                              array_agg(r.key ORDER BY r.key)) END) AS expr
          FROM vjm.payload_rules r
          LEFT JOIN vjm.payload_chars c ON c.chars = r.chars
         CROSS JOIN LATERAL (SELECT concat_ws(' WHEN ',
            CASE r.kind
                WHEN 'string' THEN format('''string'' THEN length(data ->> %1$L) BETWEEN %2$s AND %3$s AND data ->> %1$L !~ %4$L',
                                          r.key, coalesce(r.min_length, 0), r.max_length, c.refuse)
                WHEN 'choice' THEN format('''string'' THEN data ->> %L = ANY (%L::text[])', r.key, r.choices)
                WHEN 'integer' THEN format('''number'' THEN scale((data -> %1$L)::numeric) = 0 AND '
                                           '(data -> %1$L)::numeric BETWEEN %2$s AND %3$s', r.key, r.minimum, r.maximum)
                WHEN 'number' THEN format('''number'' THEN (data -> %1$L)::numeric BETWEEN %2$s AND %3$s',
                                          r.key, r.minimum, r.maximum)
                WHEN 'strings' THEN format('''array'' THEN vjm.payload_strings_ok(data -> %L, %s, %s, %s, %L)', r.key,
                                           r.max_items, coalesce(r.min_length, 0), r.max_length, c.refuse)
            END,
            CASE WHEN NOT r.required THEN '''absent'' THEN true' END,
            CASE WHEN r.nullable THEN '''null'' THEN true' END) AS cases) k
         WHERE r.trigger = s.trigger
     ) b;
    EXECUTE format(E'CREATE FUNCTION vjm.payload_ok(trigger text, data jsonb) RETURNS boolean\n'
                   || E'LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$\nBEGIN\n    CASE trigger\n        %s\n'
                   || E'        ELSE RETURN false;\n    END CASE;\nEND\n$f$', branches);
END
$$;
