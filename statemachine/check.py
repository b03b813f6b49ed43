"""Fast transition checks over the immutable table (a dict lookup, no Machine)."""

from __future__ import annotations

from .errors import InvalidTransition, StaleAttempt
from .machine import ALLOWED_TRIGGERS, FENCED_TRIGGERS, TRANSITIONS, Guard, State, Trigger


def next_state(state: State, trigger: Trigger, *, attempts_left: int = 1) -> State:
    """Return the state `trigger` leads to from `state`, or raise InvalidTransition."""
    rules = TRANSITIONS.get((state, trigger))
    if rules is None:
        raise InvalidTransition(trigger, state, allowed=ALLOWED_TRIGGERS[state])
    for rule in rules:
        if _guard_passes(rule.guard, attempts_left):
            return rule.to_state
    raise InvalidTransition(trigger, state, allowed=ALLOWED_TRIGGERS[state], reason="no attempts left")


def _guard_passes(guard: Guard | None, attempts_left: int) -> bool:
    if guard is None:
        return True
    if guard is Guard.HAS_ATTEMPTS_LEFT:
        return attempts_left > 0
    return attempts_left <= 0


def check_attempt(trigger: Trigger, state: State, *, held: int | None, current: int) -> None:
    """Attempt fencing: refuse a fenced trigger that names a stale attempt."""
    if held is not None and trigger in FENCED_TRIGGERS and held != current:
        raise StaleAttempt(trigger, state, held=held, current=current, allowed=ALLOWED_TRIGGERS[state])


def is_allowed(state: State, trigger: Trigger) -> bool:
    """True when the table has any rule for (state, trigger), guards aside."""
    return (state, trigger) in TRANSITIONS
