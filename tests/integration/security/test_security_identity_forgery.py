"""Identity that a leaked database password alone cannot forge (issue 15, finding 9).

Every test logs in as the application's login, `vjm_app`, a real non-superuser role,
with nothing but its credentials, and tries to act as someone else.
"""

from __future__ import annotations

import base64
import json
import time

import asyncpg
import jwt
import pytest

from statemachine import AccessDenied
from store import EventStore, prepare_event
from store.errors import InvalidToken, translate_error
from store.identity import APP_LOGIN, LISTENER_LOGIN, LOGINS, WORKER_LOGIN, acting_as, connect_as, whoami
from store.pool import init_connection
from store.postgres import with_user
from tests.support.factories import create_data
from tests.support.tokens import TEST_JWT_SECRET

pytestmark = pytest.mark.asyncio


def token(sub: str | None = "alice", *, secret: str = TEST_JWT_SECRET, ttl: int = 60, **claims) -> str:
    body = {"role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + ttl, **claims}
    if sub is not None:
        body["sub"] = sub
    return jwt.encode(body, secret, algorithm="HS256")


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def app_session(database_url: str) -> asyncpg.Connection:
    """A raw session with only vjm_app's credentials, acting as an end user's role."""
    conn = await asyncpg.connect(with_user(database_url, APP_LOGIN))
    await init_connection(conn)
    await conn.execute("SET ROLE vjm_authenticated")
    return conn


async def alices_job(database_url: str):
    conn = await app_session(database_url)
    try:
        await conn.execute("SELECT set_config('request.jwt', $1, false)", token("alice"))
        return await EventStore(conn).append(prepare_event("create", create_data(), user_id="alice"))
    finally:
        await conn.close()


async def test_stated_claims_name_nobody(database_url):
    """Setting request.jwt.claims / request.jwt.claim.sub (PostgREST's settings) does not make a user."""
    job = await alices_job(database_url)
    conn = await app_session(database_url)
    try:
        await conn.execute("""SELECT set_config('request.jwt.claims', '{"sub":"alice","role":"authenticated"}', false),
                                     set_config('request.jwt.claim.sub', 'alice', false)""")
        assert await conn.fetchval("SELECT vjm.current_user_id()") is None
        assert await conn.fetchval("SELECT count(*) FROM vjm.job_events WHERE job_id = $1", job.job_id) == 0
        with pytest.raises(asyncpg.PostgresError):
            await conn.fetchval("SELECT (vjm.append_event($1, 'cancel', '{}', NULL, NULL, NULL, NULL, NULL)).version", job.job_id)
    finally:
        await conn.close()


async def test_a_valid_token_names_its_subject(database_url):
    job = await alices_job(database_url)
    conn = await app_session(database_url)
    try:
        await conn.execute("SELECT set_config('request.jwt', $1, false)", token("alice"))
        assert await conn.fetchval("SELECT vjm.current_user_id()") == "alice"
        assert await conn.fetchval("SELECT count(*) FROM vjm.job_events WHERE job_id = $1", job.job_id) == 1
        # PostgREST's way: the bearer token in request.headers.
        await conn.execute("SELECT set_config('request.jwt', '', false), set_config('request.headers', $1, false)",
                           json.dumps({"authorization": f"Bearer {token('bob')}"}))
        assert await conn.fetchval("SELECT vjm.current_user_id()") == "bob"
    finally:
        await conn.close()


def forged_tokens() -> dict[str, tuple[str, str]]:
    good = token("alice")
    header, payload, signature = good.split(".")
    now = int(time.time())
    return {
        "bad signature": (token("alice", secret="another-secret-of-enough-length-42"), "signature is invalid"),
        "tampered sub": (f"{header}.{b64({'sub': 'bob', 'role': 'authenticated', 'aud': 'authenticated', 'exp': now + 60})}"
                         f".{signature}", "signature is invalid"),
        "alg none": (f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.", "signature is invalid"),
        "expired": (token("alice", ttl=-60), "expired"),
        "no exp": (jwt.encode({"sub": "alice", "role": "authenticated", "aud": "authenticated"}, TEST_JWT_SECRET,
                              algorithm="HS256"), "'exp'"),
        "wrong audience": (token("alice", aud="someone-else"), "audience"),
        "service role": (token("alice", role="service_role"), "role"),
        "no sub": (token(None), "'sub'"),
        "malformed": ("not-a-token", "malformed"),
        "HS512": (jwt.encode({"sub": "alice", "role": "authenticated", "aud": "authenticated", "exp": now + 60},
                             TEST_JWT_SECRET + TEST_JWT_SECRET, algorithm="HS512"), "signature is invalid"),
    }


@pytest.mark.parametrize("case", sorted(forged_tokens()))
async def test_a_forged_token_is_refused_with_a_typed_error(database_url, case):
    forged, reason = forged_tokens()[case]
    conn = await app_session(database_url)
    try:
        await conn.execute("SELECT set_config('request.jwt', $1, false)", forged)
        with pytest.raises(asyncpg.PostgresError) as raised:
            await conn.fetchval("SELECT vjm.current_user_id()")
        assert raised.value.sqlstate == "VJ401"
        assert reason in raised.value.message
        error = translate_error(raised.value)
        assert isinstance(error, InvalidToken) and isinstance(error, AccessDenied)
    finally:
        await conn.close()


async def test_acting_as_with_a_forged_token_raises_invalid_token(database_url):
    pool = await asyncpg.create_pool(with_user(database_url, APP_LOGIN), min_size=1, max_size=1)
    try:
        with pytest.raises(InvalidToken, match="expired"):
            async with acting_as(pool, token=token("alice", ttl=-60)) as conn:
                try:
                    await whoami(conn)
                except asyncpg.PostgresError as exc:
                    raise translate_error(exc) from exc
        async with acting_as(pool, token=token("alice")) as conn:
            assert (await whoami(conn))["user_id"] == "alice"
        async with acting_as(pool, user_id="carol") as conn:  # minted from VJM_JWT_SECRET
            assert (await whoami(conn))["user_id"] == "carol"
    finally:
        await pool.close()


async def test_the_key_and_the_issuer_are_out_of_the_apps_reach(database_url):
    conn = await app_session(database_url)
    try:
        for statement in ("SELECT * FROM vjm.identity_keys", "SELECT vjm.issue_token('alice', 60)",
                          "SELECT vjm.set_jwt_secret('attacker-chosen-secret-0123', NULL)",
                          "SELECT vjm.jwt_secret_matches('x')"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(statement)
        await conn.execute("RESET ROLE")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM vjm.identity_keys")
    finally:
        await conn.close()


@pytest.mark.parametrize("role", ["vjm_processor", "vjm_projector", "vjm_admin", "vjm_owner"])
async def test_the_app_login_cannot_become_a_service(database_url, role):
    conn = await asyncpg.connect(with_user(database_url, APP_LOGIN))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"SET ROLE {role}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT set_config('role', $1, true)", role)
    finally:
        await conn.close()


async def test_each_login_is_a_member_of_its_one_role(pool):
    rows = await pool.fetch("""
        SELECT r.rolname, r.rolinherit, r.rolsuper, r.rolbypassrls, r.rolcanlogin,
               array(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                      WHERE m.member = r.oid ORDER BY 1) AS member_of
          FROM pg_roles r WHERE r.rolname = ANY ($1)""", sorted(set(LOGINS.values())))
    found = {r["rolname"]: r for r in rows}
    for role, login in LOGINS.items():
        row = found[login]
        assert row["rolcanlogin"] and not row["rolinherit"] and not row["rolsuper"] and not row["rolbypassrls"]
        assert list(row["member_of"]) == [role], login


async def test_the_app_login_cannot_signal_other_sessions(database_url):
    victims = [await asyncpg.connect(with_user(database_url, APP_LOGIN)),
               await connect_as(database_url, role="vjm_processor"),
               await connect_as(database_url, role="vjm_projector")]
    attacker = await asyncpg.connect(with_user(database_url, APP_LOGIN))
    try:
        for victim in victims:
            pid = victim.get_server_pid()
            for call in ("SELECT pg_terminate_backend($1)", "SELECT pg_cancel_backend($1)"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await attacker.fetchval(call, pid)
            assert await victim.fetchval("SELECT 1") == 1
    finally:
        for conn in (*victims, attacker):
            await conn.close()


async def test_workers_and_the_projector_have_their_own_logins(database_url):
    for role, login in (("vjm_processor", WORKER_LOGIN), ("vjm_projector", LISTENER_LOGIN)):
        conn = await connect_as(database_url, role=role)
        try:
            assert await conn.fetchval("SELECT session_user") == login
            assert (await whoami(conn))["kind"] == role.removeprefix("vjm_")
        finally:
            await conn.close()
