"""The test session's one identity secret and the bearer tokens minted from it (SECURITY.md, "Identity").

tests/conftest.py installs TEST_JWT_SECRET as VJM_JWT_SECRET and in the template database,
so a token minted here is accepted by the HTTP API and by the database alike.
"""

from __future__ import annotations

from videojobs.http.auth import SERVICE_ROLE, USER_ROLE, mint_token

TEST_JWT_SECRET = "test-secret-for-the-http-api-0123456789"
AUDIENCE = "authenticated"


def token(sub: str | None, role: str = USER_ROLE, **claims) -> str:
    """A valid token for `sub` (service tokens: role=SERVICE_ROLE)."""
    return mint_token(TEST_JWT_SECRET, sub=sub, role=role, audience=AUDIENCE, **claims)


def bearer(sub: str | None = None, role: str = USER_ROLE) -> dict[str, str]:
    """Authorization headers for `sub`."""
    return {"Authorization": f"Bearer {token(sub, role)}"}


def service_bearer(sub: str) -> dict[str, str]:
    """Authorization headers for the trusted service `sub` (a processor or a named service)."""
    return bearer(sub, SERVICE_ROLE)


# The processor most HTTP tests report as; valid for a day, so a long run never sees it expire.
SERVICE = {"Authorization": f"Bearer {token('worker-1', SERVICE_ROLE, ttl_seconds=86400)}"}
