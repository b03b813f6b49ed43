-- End-user identity that a database password alone cannot forge.
--
-- The database verifies the user's signed token itself: an HS256 JWT (RFC 7519) with
-- Supabase-style claims, `sub`, `role` = 'authenticated', `exp`, and `aud` when an
-- audience is configured. The key lives in vjm.identity_keys, which only the owner may
-- read; the SECURITY DEFINER functions below are the only way to use it. A session that
-- holds only the application's credentials (vjm_app) can set request.jwt to any text,
-- but only a token signed with the key names a user (vjm.current_user_id(),
-- sql/schema/040_teams_and_rights.sql). Whoever holds the key can mint tokens: it is
-- the identity issuer's credential (VJM_JWT_SECRET), kept apart from database passwords.
--
-- HMAC-SHA256 (RFC 2104) with the built-in sha256(), so no extension is needed (pgcrypto
-- is not on every server, and on Supabase it lives in another schema). The key's inner
-- and outer pads are computed once, when the key is set, so a verification is two
-- sha256() calls: HMAC(K, m) = H((K xor opad) || H((K xor ipad) || m)).
--
-- Errors: SQLSTATE VJ401 (store.errors.InvalidToken), with the reason in the message:
-- malformed, bad signature, wrong algorithm, expired, not yet valid, wrong audience,
-- not an end user's token, bad sub.
SET LOCAL ROLE vjm_owner;

CREATE TABLE vjm.identity_keys (
    id         smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),  -- one key
    k_ipad     bytea       NOT NULL CHECK (length(k_ipad) = 64),
    k_opad     bytea       NOT NULL CHECK (length(k_opad) = 64),
    audience   text,                                           -- NULL: `aud` is not checked
    leeway     integer     NOT NULL DEFAULT 5 CHECK (leeway BETWEEN 0 AND 300),  -- seconds, as the HTTP layer
    set_at     timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE vjm.identity_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE vjm.identity_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON vjm.identity_keys TO vjm_owner USING (true) WITH CHECK (true);

-- RFC 4648 base64url without padding, as JWTs use it.
CREATE FUNCTION vjm.base64url_decode(p text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT decode(translate(p, '-_', '+/') || repeat('=', (4 - length(p) % 4) % 4), 'base64')
$$;

CREATE FUNCTION vjm.base64url_encode(p bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT rtrim(translate(replace(encode(p, 'base64'), E'\n', ''), '+/', '-_'), '=')
$$;

-- Set (or replace) the key, from the shared secret as the HTTP layer uses it (VJM_JWT_SECRET:
-- its UTF-8 bytes are the HMAC key). Admins only. Tokens signed with the old key stop working.
CREATE FUNCTION vjm.set_jwt_secret(p_secret text, p_audience text DEFAULT 'authenticated')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea := convert_to(p_secret, 'UTF8');
    ipad bytea;
    opad bytea;
BEGIN
    IF p_secret IS NULL OR length(k) < 16 THEN
        RAISE EXCEPTION 'the JWT secret must be at least 16 bytes' USING ERRCODE = '22023';
    END IF;
    IF length(k) > 64 THEN
        k := sha256(k);
    END IF;
    k := k || decode(repeat('00', 64 - length(k)), 'hex');
    ipad := k;
    opad := k;
    FOR i IN 0 .. 63 LOOP
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);  -- 0x36
        opad := set_byte(opad, i, get_byte(k, i) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO vjm.identity_keys AS x (id, k_ipad, k_opad, audience, set_at)
    VALUES (1, ipad, opad, nullif(p_audience, ''), now())
    ON CONFLICT (id) DO UPDATE SET k_ipad = excluded.k_ipad, k_opad = excluded.k_opad,
                                   audience = excluded.audience, set_at = excluded.set_at;
END
$$;

-- Whether the database's key equals this secret (admins; lets a deployment check its
-- configuration without reading the key). Compares two HMACs, never the key itself.
CREATE FUNCTION vjm.jwt_secret_matches(p_secret text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k vjm.identity_keys%ROWTYPE;
    key bytea := convert_to(p_secret, 'UTF8');
BEGIN
    SELECT * INTO k FROM vjm.identity_keys WHERE id = 1;
    IF NOT FOUND OR p_secret IS NULL THEN
        RETURN false;
    END IF;
    IF length(key) > 64 THEN
        key := sha256(key);
    END IF;
    key := key || decode(repeat('00', 64 - length(key)), 'hex');
    FOR i IN 0 .. 63 LOOP
        key := set_byte(key, i, get_byte(key, i) # 54);
    END LOOP;
    RETURN key = k.k_ipad;
END
$$;

-- The verified subject of an end user's token, or VJ401 saying what is wrong with it.
-- Checks, in order: shape (three base64url parts), signature, algorithm HS256, expiry
-- (`exp` required), `nbf`, audience, role 'authenticated', `sub` (1-128 characters).
-- The signature is checked before anything in the token is parsed, so only JSON that
-- the key holder signed is ever parsed. `now()` is the transaction's start: a token valid
-- when a transaction began stays valid until it ends (transactions are short: see the
-- roles' statement_timeout).
CREATE FUNCTION vjm.token_subject(p_token text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
    k vjm.identity_keys%ROWTYPE;
    header jsonb;
    claims jsonb;
    at numeric := extract(epoch FROM now());
    sub text;
BEGIN
    IF p_token IS NULL OR length(p_token) > 8192
       OR p_token !~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$' THEN
        RAISE EXCEPTION 'token is malformed' USING ERRCODE = 'VJ401';
    END IF;
    parts := string_to_array(p_token, '.');
    IF length(parts[1]) % 4 = 1 OR length(parts[2]) % 4 = 1 OR length(parts[3]) <> 43 THEN
        RAISE EXCEPTION 'token signature is invalid' USING ERRCODE = 'VJ401';
    END IF;
    SELECT * INTO k FROM vjm.identity_keys WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no token key is configured (vjm.set_jwt_secret)' USING ERRCODE = 'VJ401';
    END IF;
    IF sha256(k.k_opad || sha256(k.k_ipad || convert_to(parts[1] || '.' || parts[2], 'UTF8')))
       IS DISTINCT FROM vjm.base64url_decode(parts[3]) THEN
        RAISE EXCEPTION 'token signature is invalid' USING ERRCODE = 'VJ401';
    END IF;
    header := convert_from(vjm.base64url_decode(parts[1]), 'UTF8')::jsonb;
    claims := convert_from(vjm.base64url_decode(parts[2]), 'UTF8')::jsonb;
    IF jsonb_typeof(header) IS DISTINCT FROM 'object' OR header ->> 'alg' IS DISTINCT FROM 'HS256'
       OR jsonb_typeof(claims) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'token algorithm must be HS256' USING ERRCODE = 'VJ401';
    END IF;
    IF jsonb_typeof(claims -> 'exp') IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION 'token lacks the ''exp'' claim' USING ERRCODE = 'VJ401';
    END IF;
    IF (claims ->> 'exp')::numeric + k.leeway <= at THEN
        RAISE EXCEPTION 'token has expired' USING ERRCODE = 'VJ401';
    END IF;
    IF jsonb_typeof(claims -> 'nbf') = 'number' AND (claims ->> 'nbf')::numeric - k.leeway > at THEN
        RAISE EXCEPTION 'token is not valid yet' USING ERRCODE = 'VJ401';
    END IF;
    IF k.audience IS NOT NULL AND NOT (claims -> 'aud' = to_jsonb(k.audience)
                                       OR (jsonb_typeof(claims -> 'aud') = 'array' AND claims -> 'aud' ? k.audience)) THEN
        RAISE EXCEPTION 'token audience is not accepted' USING ERRCODE = 'VJ401';
    END IF;
    IF claims ->> 'role' IS DISTINCT FROM 'authenticated' THEN
        RAISE EXCEPTION 'token is not an end user''s (role must be ''authenticated'')' USING ERRCODE = 'VJ401';
    END IF;
    sub := CASE jsonb_typeof(claims -> 'sub') WHEN 'string' THEN claims ->> 'sub' END;
    IF sub IS NULL OR length(sub) NOT BETWEEN 1 AND 128 THEN
        RAISE EXCEPTION 'token ''sub'' must be a string of 1-128 characters' USING ERRCODE = 'VJ401';
    END IF;
    RETURN sub;
END
$$;

-- A token for end user p_sub, valid p_ttl seconds, signed with the database's key.
-- Admins only: acting as any user is a maintenance power (the manager's as_user() uses
-- it when the process has no VJM_JWT_SECRET of its own).
CREATE FUNCTION vjm.issue_token(p_sub text, p_ttl integer DEFAULT 300) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k vjm.identity_keys%ROWTYPE;
    signing_input text;
BEGIN
    IF p_sub IS NULL OR length(p_sub) NOT BETWEEN 1 AND 128 OR p_ttl IS NULL OR p_ttl NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'issue_token needs a sub of 1-128 characters and a ttl of 1-86400 seconds'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO k FROM vjm.identity_keys WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no token key is configured (vjm.set_jwt_secret)' USING ERRCODE = 'VJ401';
    END IF;
    signing_input := vjm.base64url_encode(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.'
        || vjm.base64url_encode(convert_to((jsonb_build_object(
               'sub', p_sub, 'role', 'authenticated', 'iat', floor(extract(epoch FROM now()))::bigint,
               'exp', floor(extract(epoch FROM now()))::bigint + p_ttl)
               || CASE WHEN k.audience IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('aud', k.audience) END
               )::text, 'UTF8'));
    RETURN signing_input || '.' || vjm.base64url_encode(
        sha256(k.k_opad || sha256(k.k_ipad || convert_to(signing_input, 'UTF8'))));
END
$$;

-- A new database gets a random key, so that no token verifies until someone chooses the
-- secret (VJM_JWT_SECRET: videojobs.connect installs it, or an admin calls
-- vjm.set_jwt_secret) and admins can issue tokens at once. 244 random bits.
SELECT vjm.set_jwt_secret(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'authenticated');

GRANT EXECUTE ON FUNCTION vjm.token_subject(text) TO vjm_authenticated, vjm_processor, vjm_projector, vjm_admin;
GRANT EXECUTE ON FUNCTION vjm.set_jwt_secret(text, text), vjm.jwt_secret_matches(text), vjm.issue_token(text, integer)
    TO vjm_admin;

