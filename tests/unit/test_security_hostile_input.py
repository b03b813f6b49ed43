"""Hostile input refused before any SQL: bad owners, non-executors, identity claims built as JSON.

What hostile input does against the database is in tests/integration/security/test_security_hostile_input.py.
"""

from __future__ import annotations

import pytest

from statemachine import ValidationError
from store import prepare_event
from store.identity import acting_as, identity_claims
from tests.support.factories import create_data
from tests.support.hostile_input import NOT_UUIDS


@pytest.mark.parametrize("kwargs", [
    {"user_id": ""}, {"user_id": "u" * 129}, {"user_id": 7}, {"user_id": None},
    *({"team_id": v} for v in NOT_UUIDS if v not in ("",)),
])
async def test_bad_owners_of_a_create_are_refused(kwargs) -> None:
    with pytest.raises(ValidationError):
        prepare_event("create", create_data(), **{"user_id": "alice", **kwargs})


@pytest.mark.parametrize("executor", [None, "postgresql://x", 5])
async def test_acting_as_refuses_a_non_executor(executor) -> None:
    with pytest.raises(ValidationError):
        async with acting_as(executor, user_id="alice"):
            pass


async def test_identity_claims_are_json_not_string_building() -> None:
    import json
    claims = json.loads(identity_claims("vjm_authenticated", 'a"b\\c'))
    assert claims == {"sub": 'a"b\\c', "role": "authenticated"}
    assert identity_claims("vjm_authenticated", None) == ""
