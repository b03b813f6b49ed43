"""Who is asking: a run-time role and a user identity, per transaction, and role pools.

PostgreSQL decides what a caller sees (sql/schema/090_row_level_security.sql) from two
settings: the role (`SET ROLE`) and the user (`request.jwt.claims`, read by
`vjm.current_user_id()`). The application logs in as `vjm_app`, which holds no
privilege of its own (NOINHERIT), and picks a role in one of two ways:

- `acting_as(pool, role=..., user_id=...)`: a transaction whose first statement sets
  both with `set_config(..., is_local => true)`, in one round trip. They revert at
  COMMIT or ROLLBACK, so a pooled connection never carries one request's identity
  into the next. This is how every end-user request runs.
- `create_role_pool(url, role="vjm_processor")`: a pool whose connections take a
  session role once, when they are opened. A role is not an identity: it is how
  trusted services (processors, the stuck detector, the projector) keep appends at
  one round trip each, with no BEGIN/set_config/COMMIT around them. Never hand such
  a pool to code serving end users; give that code a pool made with `role=None`,
  on which anything outside `acting_as` is refused.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog

from statemachine import ValidationError

from .errors import translate_error
from .pool import connect, init_connection, keep_session, retry_idempotent
from .postgres import with_user
from .sqlfiles import load_queries

log = structlog.get_logger("vjm.identity")

APP_LOGIN = "vjm_app"
AUTHENTICATED, PROCESSOR, PROJECTOR, ADMIN = "vjm_authenticated", "vjm_processor", "vjm_projector", "vjm_admin"
# The `role` claim, as PostgREST/Supabase put it in request.jwt.claims.
CLAIM_ROLES = {AUTHENTICATED: "authenticated", PROCESSOR: "processor", PROJECTOR: "projector", ADMIN: "admin"}
RUNTIME_ROLES = frozenset(CLAIM_ROLES)
MAX_USER_ID = 128


def validate_role(role: Any) -> str:
    """A run-time role name, or ValidationError (never passes an arbitrary name to SET ROLE)."""
    if not isinstance(role, str) or role not in RUNTIME_ROLES:
        raise ValidationError(f"role must be one of {sorted(RUNTIME_ROLES)}, got {str(role)[:60]!r}", field="role")
    return role


def validate_user_id(user_id: Any) -> str | None:
    """A user id (1-128 printable characters) or None for "no identity"."""
    if user_id is None:
        return None
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= MAX_USER_ID:
        raise ValidationError(f"user_id must be a string of 1-{MAX_USER_ID} characters", field="user_id")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in user_id):
        raise ValidationError("user_id must not contain control or format characters", field="user_id")
    return user_id


def identity_claims(role: str, user_id: str | None) -> str:
    """The request.jwt.claims JSON for a role and user ('' when there is no user)."""
    if user_id is None:
        return ""
    return json.dumps({"sub": user_id, "role": CLAIM_ROLES[validate_role(role)]}, separators=(",", ":"))


@contextlib.asynccontextmanager
async def acting_as(executor: asyncpg.Pool | asyncpg.Connection, *, role: str = AUTHENTICATED,
                    user_id: str | None = None) -> AsyncIterator[asyncpg.Connection]:
    """A transaction acting as `role` and `user_id`; yields its connection.

    Both settings are transaction-local: on exit (commit, or rollback on an error)
    the connection is back to its session role with no identity. `user_id=None`
    means no identity: an end user without one sees nothing.
    """
    role, user_id = validate_role(role), validate_user_id(user_id)
    claims = identity_claims(role, user_id)
    async with _borrow(executor) as conn:
        if conn.is_in_transaction():
            raise ValidationError("acting_as needs a connection outside a transaction: a local identity "
                                  "set inside one would outlive this block", field="executor")
        async with conn.transaction():
            try:
                await conn.fetchrow(load_queries()["identity_set"], role, claims)
            except asyncpg.PostgresError as exc:
                raise translate_error(exc) from exc
            yield conn


@contextlib.asynccontextmanager
async def _borrow(executor: asyncpg.Pool | asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(executor, asyncpg.Pool):
        async with executor.acquire() as conn:
            yield conn
    elif isinstance(executor, asyncpg.Connection):
        yield executor
    else:
        raise ValidationError("acting_as needs an asyncpg pool or connection", field="executor")


async def whoami(executor: asyncpg.Pool | asyncpg.Connection) -> dict[str, str | None]:
    """The role, kind of caller (user/processor/projector/admin/none) and user the database sees."""
    row = await executor.fetchrow(load_queries()["identity_get"])
    return {"role": row["role"], "kind": row["kind"], "user_id": row["user_id"]}


async def init_role_connection(conn: asyncpg.Connection, role: str | None) -> None:
    """Codecs, then the session role (a pool `init` hook; role None leaves the login's own rights)."""
    await init_connection(conn)
    if role is not None:
        await conn.fetchrow(load_queries()["identity_set_session_role"], validate_role(role))


async def create_role_pool(url: str, *, role: str | None = PROCESSOR, login: str = APP_LOGIN,
                           password: str | None = None, min_size: int = 1, max_size: int = 10,
                           attempts: int = 5, max_delay: float = 15.0, **kwargs: Any) -> asyncpg.Pool:
    """A pool logged in as `login` (vjm_app) whose connections act as `role` for their whole session.

    `url` is any URL of the server (e.g. the admin URL); only its user is replaced.
    Use role=None for pools that serve end users: every request then needs acting_as().
    """
    if role is not None:
        validate_role(role)
    app_url = with_user(url, login, password)

    async def _init(conn: asyncpg.Connection) -> None:
        await init_role_connection(conn, role)

    async def _open() -> asyncpg.Pool:
        kwargs.setdefault("reset", keep_session)
        return await asyncpg.create_pool(app_url, min_size=min_size, max_size=max_size, init=_init, **kwargs)

    pool = await retry_idempotent(_open, attempts=attempts, max_delay=max_delay)
    log.info("role_pool_opened", login=login, role=role, max_size=max_size)
    return pool


async def connect_as(url: str, *, role: str | None, login: str = APP_LOGIN, password: str | None = None,
                     **kwargs: Any) -> asyncpg.Connection:
    """One dedicated connection as `login`, acting as `role` for its session (e.g. a LISTEN connection)."""
    conn = await connect(with_user(url, login, password), **kwargs)
    try:
        if role is not None:
            await conn.fetchrow(load_queries()["identity_set_session_role"], validate_role(role))
    except BaseException:
        await conn.close()
        raise
    return conn
