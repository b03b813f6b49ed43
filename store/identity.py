"""Who is asking: a run-time role and a user identity, per transaction, and role pools.

PostgreSQL decides what a caller sees (sql/schema/090_row_level_security.sql) from two
things: the role (`SET ROLE`) and the user, which is the `sub` of a signed token that
the database verifies itself (`request.jwt`, read by `vjm.current_user_id()`,
sql/schema/045_identity.sql). A session can set any setting, so the database never
takes a user id on trust: only a token signed with the identity key (VJM_JWT_SECRET)
names a user. Each purpose has its own login, NOINHERIT and a member of one run-time
role only (`LOGINS`): vjm_app (end users), vjm_worker (processors), vjm_listener
(the projector). A role is picked in one of two ways:

- `acting_as(pool, role=..., user_id=... | token=...)`: a transaction whose first
  statement sets the role and the token with `set_config(..., is_local => true)`, in
  one round trip. They revert at COMMIT or ROLLBACK, so a pooled connection never
  carries one request's identity into the next. This is how every end-user request
  runs. The HTTP API passes the caller's own bearer token; other code passes a user
  id, and a `TokenSource` mints a short-lived token for it (`LocalTokens` from
  VJM_JWT_SECRET, or `DatabaseTokens`: `vjm.issue_token` on an admin's pool).
  An end user's create needs no transaction: `EventStore.append_as_user` sends the
  token (`end_user_token`) with the append, in one statement (vjm_entry.append_event).
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
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from statemachine import AccessDenied, ValidationError
from statemachine.validation import check_user_id

from .application_name import named_kwargs
from .errors import translate_error
from .executor import Connection, Executor
from .pool import connect, init_connection, keep_session, retry_idempotent
from .pooler import TRANSACTION, RolePerTransaction, pooled_kwargs, takes_role_per_transaction
from .postgres import with_user
from .queries import execute, fetch_one, fetch_value
from .tokens import TokenSource, end_user_token

log = structlog.get_logger("vjm.identity")

APP_LOGIN, WORKER_LOGIN, LISTENER_LOGIN = "vjm_app", "vjm_worker", "vjm_listener"
AUTHENTICATED, PROCESSOR, PROJECTOR, ADMIN = "vjm_authenticated", "vjm_processor", "vjm_projector", "vjm_admin"
# The login of each run-time role (sql/schema/010_roles.sql). vjm_admin has none: grant it
# to an operator's own login and pass that login.
LOGINS = {AUTHENTICATED: APP_LOGIN, PROCESSOR: WORKER_LOGIN, PROJECTOR: LISTENER_LOGIN}
# The `role` claim, as PostgREST/Supabase put it in request.jwt.claims.
CLAIM_ROLES = {AUTHENTICATED: "authenticated", PROCESSOR: "processor", PROJECTOR: "projector", ADMIN: "admin"}
RUNTIME_ROLES = frozenset(CLAIM_ROLES)


def validate_role(role: Any) -> str:
    """A run-time role name, or ValidationError (never passes an arbitrary name to SET ROLE)."""
    if not isinstance(role, str) or role not in RUNTIME_ROLES:
        raise ValidationError(f"role must be one of {sorted(RUNTIME_ROLES)}, got {str(role)[:60]!r}", field="role")
    return role


def validate_user_id(user_id: Any) -> str | None:
    """A user id (statemachine.validation.check_user_id), or None for "no identity"."""
    return None if user_id is None else check_user_id(user_id)


def login_for(role: str | None) -> str:
    """The login a pool acting as `role` uses by default (None: the end users' login)."""
    if role is None:
        return APP_LOGIN
    if validate_role(role) not in LOGINS:
        raise ValidationError(f"{role} has no login of its own: pass the login of an operator granted it",
                              field="login")
    return LOGINS[role]


def identity_claims(role: str, user_id: str | None) -> str:
    """The request.jwt.claims JSON for a role and user ('' when there is no user)."""
    if user_id is None:
        return ""
    return json.dumps({"sub": user_id, "role": CLAIM_ROLES[validate_role(role)]}, separators=(",", ":"))


@contextlib.asynccontextmanager
async def acting_as(executor: Executor, *, role: str = AUTHENTICATED,
                    user_id: str | None = None, token: str | None = None,
                    tokens: TokenSource | None = None) -> AsyncIterator[Connection]:
    """A transaction acting as `role` and an end user; yields its connection.

    The user is `token` (a signed token, e.g. the HTTP caller's own), else a token
    that `tokens` (default: `default_tokens()`) mints for `user_id`. The database
    verifies it (VJ401, InvalidToken, when it does not verify). Both settings are
    transaction-local: on exit (commit, or rollback on an error) the connection is
    back to its session role with no identity. Neither: no identity, and an end user
    without one sees nothing.
    """
    role = validate_role(role)
    claims = await end_user_token(user_id, token, tokens)
    async with _borrow(executor) as conn:
        if conn.is_in_transaction():
            raise ValidationError("acting_as needs a connection outside a transaction: a local identity "
                                  "set inside one would outlive this block", field="executor")
        async with conn.transaction():
            try:
                await fetch_one(conn, "identity_set", role=role, token=claims)
            except asyncpg.PostgresError as exc:
                raise translate_error(exc) from exc
            yield conn


@contextlib.asynccontextmanager
async def _borrow(executor: Executor) -> AsyncIterator[Connection]:
    if isinstance(executor, asyncpg.Pool):
        async with executor.acquire() as conn:
            yield conn
    elif isinstance(executor, (asyncpg.Connection, PoolConnectionProxy)):
        yield executor
    else:
        raise ValidationError("acting_as needs an asyncpg pool or connection", field="executor")


async def whoami(executor: Executor) -> dict[str, str | None]:
    """The role, kind of caller (user/processor/projector/admin/none) and user the database sees."""
    row = await fetch_one(executor, "identity_get")
    return {"role": row["role"], "kind": row["kind"], "user_id": row["user_id"]}


async def init_role_connection(conn: asyncpg.Connection, role: str | None) -> None:
    """Codecs, then the session role (a pool `init` hook; role None leaves the login's own rights).

    Behind a transaction pooler (a RolePerTransaction connection) the role is taken per
    transaction instead, unless the login's default role already is `role`.
    """
    await init_connection(conn)
    if role is not None:
        try:
            if takes_role_per_transaction(conn):
                await _take_role_per_transaction(conn, validate_role(role))  # type: ignore[arg-type]
            else:
                await fetch_one(conn, "identity_set_session_role", role=validate_role(role))
        except asyncpg.InsufficientPrivilegeError as exc:
            login = getattr(conn.get_settings(), "session_authorization", None) or "this login"
            raise AccessDenied(f"login {login} may not act as {role}: as an admin, GRANT {role} TO {login}, "
                               f"or use the login made for it ({login_for(role)}); see SECURITY.md") from exc


async def _take_role_per_transaction(conn: RolePerTransaction, role: str) -> None:
    """Act as `role` in each transaction of `conn` (none needed when the login's default role is `role`);
    InsufficientPrivilegeError now, not at the first request, when the login may not."""
    if await fetch_value(conn, "identity_current_role") == role:
        return
    async with conn.transaction():
        await fetch_one(conn, "identity_set_local_role", role=role)
    conn.vjm_role = role


async def may_act_as_admin(url: str) -> bool:
    """Whether the login of `url` may act as vjm_admin (a superuser, or a member of it)."""
    conn = await asyncpg.connect(url, **named_kwargs(url, {}))
    try:
        return bool(await fetch_value(conn, "identity_may_admin"))
    finally:
        await conn.close()


async def install_identity_key(executor: Executor, secret: str, audience: str | None) -> bool:
    """Make `secret` the database's identity key unless it already is (admins); True when it changed."""
    if await fetch_value(executor, "identity_key_matches", secret=secret):
        return False
    await execute(executor, "identity_key_set", secret=secret, audience=audience)
    return True


async def create_role_pool(url: str, *, role: str | None = PROCESSOR, login: str | None = None,
                           password: str | None = None, min_size: int = 1, max_size: int = 10,
                           attempts: int = 5, max_delay: float = 15.0, pooler: str | None = None,
                           **kwargs: Any) -> asyncpg.Pool:
    """A pool logged in as `login` (default `login_for(role)`) whose connections act as `role` for their session.

    `url` is any URL of the server (e.g. the admin URL); only its user is replaced.
    Use role=None for pools that serve end users: every request then needs acting_as().
    `pooler="transaction"`: `url` is a transaction pooler (store.pooler); the role is then
    taken per transaction, and no statement is cached on the server.
    """
    if role is not None:
        validate_role(role)
    login = login or login_for(role)
    app_url = with_user(url, login, password)
    kwargs = pooled_kwargs(pooler, named_kwargs(app_url, kwargs))  # store.application_name, store.pooler
    if pooler == TRANSACTION:
        kwargs.setdefault("connection_class", RolePerTransaction)

    async def _init(conn: asyncpg.Connection) -> None:
        await init_role_connection(conn, role)

    async def _open() -> asyncpg.Pool:
        kwargs.setdefault("reset", keep_session)
        return await asyncpg.create_pool(app_url, min_size=min_size, max_size=max_size, init=_init, **kwargs)

    pool = await retry_idempotent(_open, attempts=attempts, max_delay=max_delay)
    log.info("role_pool_opened", login=login, role=role, max_size=max_size)
    return pool


async def connect_as(url: str, *, role: str | None, login: str | None = None, password: str | None = None,
                     **kwargs: Any) -> asyncpg.Connection:
    """One dedicated connection as `login` (default `login_for(role)`), acting as `role` for its session."""
    conn = await connect(with_user(url, login or login_for(role), password), **kwargs)
    try:
        if role is not None:
            await fetch_one(conn, "identity_set_session_role", role=validate_role(role))
    except BaseException:
        await conn.close()
        raise
    return conn
