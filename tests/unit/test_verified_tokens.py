"""The API remembers tokens it verified (videojobs.http.auth.decode_token): a remembered token still expires on
time, a token never verified is never remembered, and a changed secret or audience verifies afresh."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.support.tokens import AUDIENCE, TEST_JWT_SECRET
from tests.support.waiting import poll_blocking
from videojobs.http.auth import LEEWAY_SECONDS, AuthenticationFailed, _verified_claims, decode_token


def _token(*, exp: float, secret: str = TEST_JWT_SECRET, **claims) -> str:
    return jwt.encode({"sub": "alice", "role": "authenticated", "aud": AUDIENCE, "exp": int(exp), **claims},
                      secret, algorithm="HS256")


def test_a_remembered_token_still_expires_on_time() -> None:
    token = _token(exp=time.time() - LEEWAY_SECONDS + 2)  # valid for at most two seconds more, leeway included
    assert decode_token(token, secret=TEST_JWT_SECRET, audience=AUDIENCE).sub == "alice"
    assert decode_token(token, secret=TEST_JWT_SECRET, audience=AUDIENCE).sub == "alice"  # the remembered one
    hits = _verified_claims.cache_info().hits

    def refused() -> bool:
        try:
            decode_token(token, secret=TEST_JWT_SECRET, audience=AUDIENCE)
        except AuthenticationFailed as exc:
            return "expired" in str(exc)
        return False

    poll_blocking(refused, 5, "the remembered token to expire")
    assert _verified_claims.cache_info().hits > hits  # refused from memory, by the clock: not verified again


def test_a_token_not_yet_valid_is_refused_until_its_time() -> None:
    token = _token(exp=time.time() + 60, nbf=int(time.time()) + LEEWAY_SECONDS + 30)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed, match="not valid yet"):
            decode_token(token, secret=TEST_JWT_SECRET, audience=AUDIENCE)


def test_refusals_are_never_remembered_and_each_secret_and_audience_verifies_afresh() -> None:
    forged = _token(exp=time.time() + 60, secret="f" * 40)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed, match="signature"):
            decode_token(forged, secret=TEST_JWT_SECRET, audience=AUDIENCE)
    token = _token(exp=time.time() + 60)
    assert decode_token(token, secret=TEST_JWT_SECRET, audience=AUDIENCE).sub == "alice"
    with pytest.raises(AuthenticationFailed, match="signature"):  # the secret changed: verified again, and refused
        decode_token(token, secret="r" * 40, audience=AUDIENCE)
    with pytest.raises(AuthenticationFailed, match="audience"):
        decode_token(token, secret=TEST_JWT_SECRET, audience="another-audience")


def test_the_remembered_claims_cannot_be_changed_by_a_caller() -> None:
    token = _token(exp=time.time() + 60)
    decode_token(token, secret=TEST_JWT_SECRET, audience=AUDIENCE)
    with pytest.raises(TypeError):
        _verified_claims(token, TEST_JWT_SECRET, AUDIENCE)["sub"] = "mallory"  # type: ignore[index]
    assert decode_token(token, secret=TEST_JWT_SECRET, audience=AUDIENCE).sub == "alice"
