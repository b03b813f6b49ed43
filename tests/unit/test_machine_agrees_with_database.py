"""The error hierarchy the database's refusals are translated into (the machine against the database is in
tests/integration/test_machine_agrees_with_database.py)."""

from __future__ import annotations

from statemachine import InvalidTransition, StaleAttempt


def test_stale_attempt_is_an_invalid_transition() -> None:
    assert issubclass(StaleAttempt, InvalidTransition)
