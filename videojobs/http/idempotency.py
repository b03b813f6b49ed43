"""The Idempotency-Key header of `POST /api/v1/process` (IETF httpapi draft "The Idempotency-Key HTTP Header
Field"): its syntax here; what a key does is the manager's and the database's (sql/schema/062_idempotency.sql).

The header is a Structured Field string, `Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`
(backslash escapes `\\"` and `\\\\` inside), or the bare key, which many clients send. Either way
the key is 1-200 visible ASCII characters (the payload rule of `idempotency_key`); the body's
`idempotency_key` is the same key, and when both are given they must be equal.
"""

from __future__ import annotations

import re

from videojobs import ValidationError

HEADER = "Idempotency-Key"
FIELD = "header.idempotency-key"
# A quoted string (no space; `"` and `\` escaped) or a bare key (not starting with a quote), 1-200 characters.
HEADER_PATTERN = (r'^(?:"(?:[\u0021\u0023-\u005b\u005d-\u007e]|\\["\\]){1,200}"'
                  r'|[\u0021\u0023-\u007e][\u0021-\u007e]{0,199})$')
HEADER_MAX_LENGTH = 2 + 2 * 200
HEADER_DESCRIPTION = (
    "An idempotency key (1-200 visible ASCII characters), as a Structured Field string (`\"key\"`) or bare. "
    "The same key from the same user within 24 hours answers as the first request did (201 and the job as it "
    "was created) and creates nothing; with a different body: 422; while a request with this key is still in "
    "progress: 409. The body's `idempotency_key` is the same key: both given, they must be equal.")
# How long a create waits for a request with the same key still in progress before it answers 409: long
# enough for a request that is committing to finish (its answer is then the replay), short for one that hangs.
KEY_WAIT_SECONDS = 0.1

_ESCAPE = re.compile(r'\\(["\\])')


def request_key(header: str | None, body: str | None) -> str | None:
    """The request's idempotency key: the header's (unquoted) or the body's; ValidationError if they differ."""
    key = None if header is None else _from_header(header)
    if key is not None and body is not None and key != body:
        raise ValidationError(f"the {HEADER} header and the body's idempotency_key differ", field="idempotency_key")
    return key if key is not None else body


def _from_header(value: str) -> str:
    if re.fullmatch(HEADER_PATTERN, value) is None:
        raise ValidationError(f"{HEADER} must be 1-200 visible ASCII characters, bare or as a quoted string",
                              field=FIELD)
    return _ESCAPE.sub(r"\1", value[1:-1]) if value.startswith('"') else value
