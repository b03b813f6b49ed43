"""The transition table: every (state, trigger) pair is either allowed as the table says, or refused."""

from __future__ import annotations

import itertools
import time

import pytest

from statemachine import (
    ALLOWED_TRIGGERS,
    RULES,
    TRANSITIONS,
    InvalidTransition,
    StaleAttempt,
    State,
    Trigger,
    build_machine,
    check_attempt,
    next_state,
)

# The table, written out by hand: the spec of what the machine must allow.
EXPECTED = {
    (State.ABSENT, Trigger.CREATE): State.QUEUED,
    (State.QUEUED, Trigger.START): State.PROCESSING,
    (State.QUEUED, Trigger.CANCEL): State.CANCELLED,
    (State.QUEUED, Trigger.UPDATE_METADATA): State.QUEUED,
    (State.QUEUED, Trigger.RESCHEDULE): State.QUEUED,
    (State.QUEUED, Trigger.DELETE): State.DELETED,
    (State.PROCESSING, Trigger.PROGRESS): State.PROCESSING,
    (State.PROCESSING, Trigger.COMPLETE): State.COMPLETED,
    (State.PROCESSING, Trigger.FAIL): State.FAILED,
    (State.PROCESSING, Trigger.CANCEL): State.CANCELLED,
    (State.PROCESSING, Trigger.TIME_OUT): State.QUEUED,
    (State.PROCESSING, Trigger.REQUEUE): State.QUEUED,
    (State.PROCESSING, Trigger.RELEASE): State.QUEUED,
    (State.PROCESSING, Trigger.UPDATE_METADATA): State.PROCESSING,
    (State.COMPLETED, Trigger.UPDATE_METADATA): State.COMPLETED,
    (State.COMPLETED, Trigger.DELETE): State.DELETED,
    (State.FAILED, Trigger.RETRY): State.QUEUED,
    (State.FAILED, Trigger.UPDATE_METADATA): State.FAILED,
    (State.FAILED, Trigger.DELETE): State.DELETED,
    (State.CANCELLED, Trigger.RETRY): State.QUEUED,
    (State.CANCELLED, Trigger.UPDATE_METADATA): State.CANCELLED,
    (State.CANCELLED, Trigger.DELETE): State.DELETED,
    # An admin's void keeps the state, in every state a job can be in (a deleted job's bad
    # event must be voidable too: it stops the projector all the same).
    **{(state, Trigger.VOID): state for state in State if state is not State.ABSENT},
}


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(State, Trigger)))
def test_every_pair_is_allowed_or_refused(state: State, trigger: Trigger) -> None:
    if (state, trigger) in EXPECTED:
        assert next_state(state, trigger, attempts_left=1) is EXPECTED[(state, trigger)]
        assert trigger in ALLOWED_TRIGGERS[state]
    else:
        with pytest.raises(InvalidTransition) as info:
            next_state(state, trigger, attempts_left=1)
        assert info.value.state == state and info.value.trigger == trigger
        assert trigger not in ALLOWED_TRIGGERS[state]


def test_time_out_with_no_attempts_left_fails_the_job() -> None:
    assert next_state(State.PROCESSING, Trigger.TIME_OUT, attempts_left=0) is State.FAILED
    assert next_state(State.PROCESSING, Trigger.TIME_OUT, attempts_left=2) is State.QUEUED


def test_a_requeue_with_no_attempts_left_fails_the_job() -> None:
    """A worker's Retry uses up its attempt, as a time_out does."""
    assert next_state(State.PROCESSING, Trigger.REQUEUE, attempts_left=0) is State.FAILED
    assert next_state(State.PROCESSING, Trigger.REQUEUE, attempts_left=2) is State.QUEUED


def test_start_needs_an_attempt_left() -> None:
    with pytest.raises(InvalidTransition, match="no attempts left"):
        next_state(State.QUEUED, Trigger.START, attempts_left=0)


def test_deleted_is_a_tombstone() -> None:
    """Nothing moves a deleted job; only an admin's void (which keeps the state) may name one of its events."""
    assert ALLOWED_TRIGGERS[State.DELETED] == frozenset({Trigger.VOID})
    assert next_state(State.DELETED, Trigger.VOID) is State.DELETED


def test_table_is_derived_from_the_transitions_machine() -> None:
    machine = build_machine()
    from_machine = {(src, name) for name, ev in machine.events.items() for src in ev.transitions}
    assert from_machine == {(r.from_state.value, r.trigger.value) for r in RULES}
    assert set(TRANSITIONS) == {(r.from_state, r.trigger) for r in RULES}


def test_table_is_immutable() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[(State.QUEUED, Trigger.COMPLETE)] = ()  # type: ignore[index]


def test_attempt_fencing_refuses_stale_attempts_only_for_fenced_triggers() -> None:
    check_attempt(Trigger.COMPLETE, State.PROCESSING, held=2, current=2)
    check_attempt(Trigger.COMPLETE, State.PROCESSING, held=None, current=2)
    check_attempt(Trigger.CANCEL, State.PROCESSING, held=1, current=2)
    with pytest.raises(StaleAttempt) as info:
        check_attempt(Trigger.COMPLETE, State.PROCESSING, held=1, current=2)
    assert (info.value.held, info.value.current) == (1, 2)


def test_checking_a_transition_costs_well_under_10_microseconds() -> None:
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        next_state(State.PROCESSING, Trigger.TIME_OUT, attempts_left=1)
    per_check = (time.perf_counter() - started) / rounds
    assert per_check < 10e-6, f"{per_check * 1e6:.2f} µs per check"
