"""Problem documents keep the database's own wording out, checked without a database (the API's in tests/http)."""

from __future__ import annotations

import json

from statemachine import AccessDenied
from videojobs.http.problems import problem_for


def test_a_403_does_not_carry_the_databases_own_wording() -> None:
    raw = 'new row violates row-level security policy for table "team_members"'
    body = json.loads(problem_for(AccessDenied(raw)).body)
    assert body["status"] == 403
    assert "row-level security" not in body["detail"] and "team_members" not in json.dumps(body)
    ours = json.loads(problem_for(AccessDenied("not allowed to start job 42")).body)
    assert ours["detail"] == "not allowed to start job 42"  # vjm's own words stay
