"""End users' signed tokens: where acting_as() gets the token that names a user to the database.

The database verifies every token itself (vjm.current_user_id(), sql/schema/045_identity.sql);
these only mint or pass them: `LocalTokens` signs with VJM_JWT_SECRET in this process,
`DatabaseTokens` asks `vjm.issue_token` on an admin's pool.
"""

from __future__ import annotations

import os
import time
from typing import Any

import asyncpg

from statemachine import ValidationError
from statemachine.validation import check_user_id

from .errors import InvalidToken, translate_error
from .queries import fetch_value


class TokenSource:
    """Mints short-lived end-user tokens for `acting_as(user_id=...)`; cached per user."""

    ttl_seconds = 300

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, float]] = {}

    async def token_for(self, user_id: str) -> str:
        """A token for `user_id` with at least half its lifetime left."""
        cached = self._cache.get(user_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        token = await self._mint(user_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[user_id] = (token, now + self.ttl_seconds / 2)
        return token

    async def _mint(self, user_id: str) -> str:
        raise NotImplementedError


class LocalTokens(TokenSource):
    """Tokens signed in this process with the identity secret (VJM_JWT_SECRET)."""

    def __init__(self, secret: str, audience: str | None = "authenticated") -> None:
        super().__init__()
        self._secret, self._audience = secret, audience

    async def _mint(self, user_id: str) -> str:
        import jwt

        now = int(time.time())
        claims: dict[str, Any] = {"sub": user_id, "role": "authenticated", "iat": now, "exp": now + self.ttl_seconds}
        if self._audience is not None:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm="HS256")


class DatabaseTokens(TokenSource):
    """Tokens issued by the database (`vjm.issue_token`) on a pool that acts as vjm_admin."""

    def __init__(self, admin_pool: asyncpg.Pool) -> None:
        super().__init__()
        self._pool = admin_pool

    async def _mint(self, user_id: str) -> str:
        try:
            return str(await fetch_value(self._pool, "identity_token_issue", user_id=user_id,
                                         ttl_seconds=self.ttl_seconds))
        except asyncpg.PostgresError as exc:
            raise translate_error(exc) from exc


_default_tokens: TokenSource | None = None


def configure_tokens(source: TokenSource | None) -> None:
    """The process's default token source (else LocalTokens from VJM_JWT_SECRET, if set)."""
    global _default_tokens
    _default_tokens = source


def default_tokens() -> TokenSource | None:
    """The configured token source, or one from VJM_JWT_SECRET / VJM_JWT_AUDIENCE, or None."""
    global _default_tokens
    if _default_tokens is None and os.environ.get("VJM_JWT_SECRET"):
        _default_tokens = LocalTokens(os.environ["VJM_JWT_SECRET"],
                                      os.environ.get("VJM_JWT_AUDIENCE", "authenticated") or None)
    return _default_tokens


async def token_for(user_id: str | None, tokens: TokenSource | None = None) -> str:
    """The token acting_as sends for `user_id` ('' for no identity)."""
    if user_id is None:
        return ""
    source = tokens or default_tokens()
    if source is None:
        raise InvalidToken("no token source to act as an end user: set VJM_JWT_SECRET "
                           "(or connect as an admin, which asks the database for tokens)")
    return await source.token_for(user_id)


async def end_user_token(user_id: str | None, token: str | None = None, tokens: TokenSource | None = None) -> str:
    """The token that names the end user to the database: `token` (checked for shape only: the database
    verifies it), else one minted for `user_id` ('' for no identity)."""
    user_id = None if user_id is None else check_user_id(user_id)
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= 8192):
        raise ValidationError("token must be a string of at most 8192 characters", field="token")
    return token if token is not None else await token_for(user_id, tokens)
