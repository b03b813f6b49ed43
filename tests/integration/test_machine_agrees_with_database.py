"""Property: for random trigger sequences, the Python model and the database agree on every outcome."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine import (
    FENCED_TRIGGERS,
    ConcurrencyConflict,
    InvalidTransition,
    JobNotFound,
    State,
    Trigger,
    check_attempt,
    next_state,
)
from store import EventStore, connect, prepare_event
from tests.support.factories import create_data

SAMPLE_DATA = {
    Trigger.CREATE: create_data(max_attempts=2),
    Trigger.START: {"worker_id": "w"},
    Trigger.PROGRESS: {"percent": 10},
    Trigger.COMPLETE: {"output_paths": ["/out.mp4"], "processing_time": 3},
    Trigger.FAIL: {"error": "boom"},
    Trigger.CANCEL: {},
    Trigger.RETRY: {},
    Trigger.TIME_OUT: {},
    Trigger.REQUEUE: {"error": "busy", "retry_after": 0},
    Trigger.RELEASE: {"reason": "shutting down"},
    Trigger.UPDATE_METADATA: {"clip_count": 2},
    Trigger.RESCHEDULE: {"priority": 5},
    Trigger.DELETE: {},
    Trigger.VOID: {"position": 1, "reason": "sample"},  # runs as a superuser: an admin, who may void
}


@dataclass
class Model:
    """The Python side: the job's state as the statemachine package predicts it."""

    state: State = State.ABSENT
    attempt: int = 0
    attempts_left: int = 0

    def apply(self, trigger: Trigger, held: int | None) -> State:
        if self.state is State.ABSENT and trigger is not Trigger.CREATE:
            raise JobNotFound(None)
        if trigger in FENCED_TRIGGERS and self.state is State.PROCESSING:
            check_attempt(trigger, self.state, held=held, current=self.attempt)
        target = next_state(self.state, trigger, attempts_left=self.attempts_left)
        if trigger is Trigger.CREATE or trigger is Trigger.RETRY:
            self.attempts_left = 2
        if trigger is Trigger.START:
            self.attempt, self.attempts_left = self.attempt + 1, self.attempts_left - 1
        if trigger is Trigger.RELEASE:  # gives back the attempt its start took
            self.attempts_left += 1
        self.state = target
        return target


steps = st.lists(st.tuples(st.sampled_from(list(Trigger)), st.sampled_from(["current", "stale", "none"])),
                 min_size=1, max_size=25)


async def _outcome(store: EventStore, job_id: uuid.UUID, trigger: Trigger, held: int | None):
    try:
        event = await store.append(prepare_event(trigger, SAMPLE_DATA[trigger], job_id=job_id, attempt=held,
                                                 user_id="prop"))
        return ("ok", event.to_state.value)
    except (InvalidTransition, JobNotFound, ConcurrencyConflict) as exc:
        return (type(exc).__name__, None)


def _predict(model: Model, trigger: Trigger, held: int | None):
    try:
        return ("ok", model.apply(trigger, held).value)
    except (InvalidTransition, JobNotFound) as exc:
        return (type(exc).__name__, None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_python_model_and_database_agree(database_url: str, sequence) -> None:
    async def run() -> None:
        conn = await connect(database_url)
        store, model, job_id = EventStore(conn), Model(), uuid.uuid4()
        try:
            for trigger, fence in sequence:
                held = {"current": model.attempt, "stale": model.attempt - 1, "none": None}[fence]
                held = held if held is None or held >= 0 else None
                expected = _predict(model, trigger, held)
                actual = await _outcome(store, job_id, trigger, held)
                if trigger is Trigger.CREATE and expected[0] != "ok":
                    # A second create of an existing id: the model refuses it, the database reports a conflict.
                    assert actual[0] == "ConcurrencyConflict"
                    continue
                assert actual == expected, (trigger, fence, model)
        finally:
            await conn.close()

    asyncio.run(run())


async def test_the_rule_tables_equal_the_python_machine(pool) -> None:
    """vjm.trigger_rules and vjm.job_defaults are statemachine's rules, and so are the functions compiled from them."""
    from statemachine import ADMIN_TRIGGERS, PROCESSOR_TRIGGERS, USER_TRIGGERS, WORKER_REPORTS
    from statemachine.payloads import DEFAULT_MAX_ATTEMPTS

    rows = await pool.fetch("SELECT trigger, fired_by, fenced, worker_report,"
                            " vjm.fired_by_processor(trigger) AS compiled_processor,"
                            " vjm.fired_by_user(trigger) AS compiled_user, vjm.fenced(trigger) AS compiled_fenced,"
                            " vjm.worker_report(trigger) AS compiled_report FROM vjm.trigger_rules")
    assert {r["trigger"] for r in rows} == {t.value for t in Trigger}
    for row in rows:
        trigger = Trigger(row["trigger"])
        assert row["fired_by"] == ("processor" if trigger in PROCESSOR_TRIGGERS
                                   else "admin" if trigger in ADMIN_TRIGGERS else "user"), trigger
        assert row["compiled_user"] is (trigger in USER_TRIGGERS), trigger
        assert row["fenced"] is (trigger in FENCED_TRIGGERS), trigger
        assert row["compiled_processor"] is (trigger in PROCESSOR_TRIGGERS), trigger
        assert row["compiled_fenced"] is (trigger in FENCED_TRIGGERS), trigger
        assert row["worker_report"] is row["compiled_report"] is (trigger in WORKER_REPORTS), trigger
    assert await pool.fetchval("SELECT max_attempts FROM vjm.job_defaults") == DEFAULT_MAX_ATTEMPTS
    assert await pool.fetchval("SELECT vjm.default_max_attempts()") == DEFAULT_MAX_ATTEMPTS
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_defaults") == 1


async def test_the_queue_movers_are_the_triggers_that_enter_or_leave_queued_or_processing(pool) -> None:
    """vjm.moves_in_queue: exactly the triggers with a transition into or out of `queued` (not create), or into or
    out of `processing` (the run queue's processing flag, what claim caps count)."""
    from statemachine import RULES

    expected = {rule.trigger.value for rule in RULES if rule.trigger is not Trigger.CREATE
                and (State.QUEUED in (rule.from_state, rule.to_state)
                     or (rule.from_state is State.PROCESSING) != (rule.to_state is State.PROCESSING))}
    rows = await pool.fetch("SELECT t, vjm.moves_in_queue(t) AS moves FROM unnest($1::text[]) t",
                            [t.value for t in Trigger])
    assert {r["t"] for r in rows if r["moves"]} == expected
