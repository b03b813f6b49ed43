"""The token helper (`python -m videojobs.http.token`), with no database; the API's auth is in tests/http."""

from __future__ import annotations

from tests.support.tokens import AUDIENCE, TEST_JWT_SECRET
from videojobs.http.auth import SERVICE_ROLE


def test_token_helper_prints_a_verifiable_token(capsys, monkeypatch):
    from videojobs.http.auth import decode_token
    from videojobs.http.token import main

    monkeypatch.setenv("VJM_JWT_SECRET", TEST_JWT_SECRET)
    assert main(["--sub", "user-123", "--role", "authenticated"]) == 0
    printed = capsys.readouterr().out.strip()
    who = decode_token(printed, secret=TEST_JWT_SECRET, audience=AUDIENCE)
    assert who.sub == "user-123" and not who.is_service
    assert main(["--role", SERVICE_ROLE]) == 0
    assert decode_token(capsys.readouterr().out.strip(), secret=TEST_JWT_SECRET, audience=AUDIENCE).is_service
