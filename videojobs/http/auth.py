"""Bearer JWT authentication: HS256, Supabase-style claims (`sub`, `role`, `aud`, `exp`).

The API checks the token first (a clear 401), then passes the user's own token on to
the database, which verifies it again with the same secret (sql/schema/045_identity.sql):
the API names no user the token does not name.

`authenticated` tokens act as the end user `sub` (every query under RLS, through
`manager.as_user(sub)`); `service_role` tokens act as the trusted service
(processors, admin). Every token must carry `exp`, and `aud` equal to the
configured audience (VJM_JWT_AUDIENCE, default "authenticated"), service tokens
included: one rule, no token class that skips the audience check. Set the
audience to None to turn the check off (e.g. to accept Supabase's service key).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import jwt

from videojobs.models import MAX_USER_ID

USER_ROLE, SERVICE_ROLE = "authenticated", "service_role"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 5
VERIFIED_TOKENS = 4096  # tokens remembered as verified (per process; a client sends the same one until it expires)


class AuthenticationFailed(Exception):
    """No usable credentials: answered with 401 and a WWW-Authenticate challenge."""

    def __init__(self, message: str, *, error: str = "invalid_token"):
        super().__init__(message)
        self.error = error


class Forbidden(Exception):
    """Authenticated, but this caller's role may not use the endpoint: 403."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: the subject and whether it is the trusted service."""

    sub: str | None
    role: str
    token: str | None = field(default=None, repr=False, compare=False)  # passed on: the database verifies it too

    @property
    def is_service(self) -> bool:
        """True for service_role tokens (processors, admin)."""
        return self.role == SERVICE_ROLE


def own_sub(who: Principal) -> str:
    """An end user's own id: their token always names one (decode_token refuses it otherwise)."""
    if who.sub is None:
        raise AuthenticationFailed("token lacks the 'sub' claim")
    return who.sub


def decode_token(token: str, *, secret: str, audience: str | None) -> Principal:
    """Verify signature, expiry and audience; AuthenticationFailed says which check failed.

    A token verified once is remembered (the same string always has the same signature, claims and
    audience verdict for one secret), so a client's next requests with it skip the HMAC and the JSON:
    only its expiry and not-before are checked again, against the clock of this request."""
    claims = _verified_claims(token, secret, audience)
    now = time.time()
    if claims["exp"] + LEEWAY_SECONDS <= now:
        raise AuthenticationFailed("token has expired")
    if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] - LEEWAY_SECONDS > now:
        raise AuthenticationFailed("token is not valid yet")
    return _principal(claims, token)


@functools.lru_cache(maxsize=VERIFIED_TOKENS)
def _verified_claims(token: str, secret: str, audience: str | None) -> MappingProxyType[str, Any]:
    """The claims of a token whose signature and audience verify (read-only: shared by every request that
    sends it); AuthenticationFailed otherwise (not remembered: lru_cache keeps no exception)."""
    options: jwt.types.Options = {"require": ["exp", "role"] + (["aud"] if audience else []),
                                  "verify_aud": audience is not None}
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=audience, options=options,
                            leeway=LEEWAY_SECONDS)
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("token has expired") from None
    except jwt.ImmatureSignatureError:
        raise AuthenticationFailed("token is not valid yet") from None
    except jwt.InvalidAudienceError:
        raise AuthenticationFailed("token audience is not accepted") from None
    except jwt.InvalidSignatureError:
        raise AuthenticationFailed("token signature is invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthenticationFailed(f"token lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError:
        raise AuthenticationFailed("token is malformed") from None
    return MappingProxyType(claims)


def _principal(claims: Mapping[str, Any], token: str | None = None) -> Principal:
    role, sub = claims.get("role"), claims.get("sub")
    if sub is not None and (not isinstance(sub, str) or not 1 <= len(sub) <= MAX_USER_ID):
        raise AuthenticationFailed(f"token 'sub' must be a string of 1-{MAX_USER_ID} characters")
    if role == USER_ROLE and sub is None:
        raise AuthenticationFailed("token lacks the 'sub' claim")
    if not isinstance(role, str):
        raise AuthenticationFailed("token 'role' must be a string")
    return Principal(sub=sub, role=role, token=token)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or AuthenticationFailed."""
    if not authorization:
        raise AuthenticationFailed("missing bearer token", error="invalid_request")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("authorization header must be 'Bearer <token>'", error="invalid_request")
    return token.strip()


def mint_token(secret: str, *, sub: str | None, role: str = USER_ROLE, audience: str | None = "authenticated",
               ttl_seconds: int = 3600, **extra: Any) -> str:
    """An HS256 token with Supabase-style claims (for dev tools, tests and benchmarks)."""
    import time

    now = int(time.time())
    claims: dict[str, Any] = {"role": role, "iat": now, "exp": now + ttl_seconds, **extra}
    if sub is not None:
        claims["sub"] = sub
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
