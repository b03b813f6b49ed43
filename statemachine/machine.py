"""The video job state machine, defined once with `transitions`.

The `transitions` Machine is the single, readable definition. At import time it
is flattened into an immutable table (`TRANSITIONS`) so that checking a
transition is a dict lookup, never a Machine built per job.

Which component moves a job out of each state:
- absent:     the user (create)
- queued:     a processor (start), the user (cancel, update_metadata, reschedule: its priority or
              run_at, delete)
- processing: the processor (progress, complete, fail; requeue: try again later, using up the
              attempt; release: give it back unfinished, with the attempt), the stuck detector
              (time_out), the user (cancel, update_metadata)
- completed, failed, cancelled: the user (retry, update_metadata, delete)
- deleted:    nobody; it is a tombstone and the history stays
- any state but absent: an admin (void), which keeps the state. A void names an earlier
  event of the job (its position) that the read models must skip: an event the projector
  cannot apply (store/projections/fold.py). The log keeps both the event and the void.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from transitions import Machine


class State(StrEnum):
    """A job's status. `absent` is the pseudo-state before `create`."""

    ABSENT = "absent"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DELETED = "deleted"


class Trigger(StrEnum):
    """Everything that can happen to a job; each is stored as an event type."""

    CREATE = "create"
    START = "start"
    PROGRESS = "progress"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    RETRY = "retry"
    TIME_OUT = "time_out"
    REQUEUE = "requeue"
    RELEASE = "release"
    UPDATE_METADATA = "update_metadata"
    RESCHEDULE = "reschedule"
    DELETE = "delete"
    VOID = "void"


class Guard(StrEnum):
    """Named conditions; the same names are used by the SQL append trigger."""

    HAS_ATTEMPTS_LEFT = "has_attempts_left"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"


LIVE_STATES = (State.QUEUED, State.PROCESSING, State.COMPLETED, State.FAILED, State.CANCELLED)
TERMINAL_STATES = frozenset({State.COMPLETED, State.FAILED, State.CANCELLED, State.DELETED})
# Triggers that name the attempt they belong to; a stale attempt is refused.
FENCED_TRIGGERS = frozenset(
    {Trigger.PROGRESS, Trigger.COMPLETE, Trigger.FAIL, Trigger.TIME_OUT, Trigger.REQUEUE, Trigger.RELEASE})
# What an attempt's worker reports about its own work: written without a named actor by a
# trusted caller, the event records the worker that started the attempt. (time_out is a
# verdict on the worker, not by it.)
WORKER_REPORTS = frozenset({Trigger.PROGRESS, Trigger.COMPLETE, Trigger.FAIL, Trigger.REQUEUE, Trigger.RELEASE})
# Triggers reserved for processors (and the stuck detector); users fire the rest.
PROCESSOR_TRIGGERS = frozenset(
    {Trigger.START, Trigger.PROGRESS, Trigger.COMPLETE, Trigger.FAIL, Trigger.TIME_OUT, Trigger.REQUEUE,
     Trigger.RELEASE}
)
# Triggers only an admin fires (admins fire every trigger).
ADMIN_TRIGGERS = frozenset({Trigger.VOID})
USER_TRIGGERS = frozenset(Trigger) - PROCESSOR_TRIGGERS - ADMIN_TRIGGERS

_DEFINITION: list[dict[str, object]] = [
    {"trigger": Trigger.CREATE, "source": State.ABSENT, "dest": State.QUEUED},
    {"trigger": Trigger.START, "source": State.QUEUED, "dest": State.PROCESSING,
     "conditions": [Guard.HAS_ATTEMPTS_LEFT]},
    {"trigger": Trigger.PROGRESS, "source": State.PROCESSING, "dest": State.PROCESSING},
    {"trigger": Trigger.COMPLETE, "source": State.PROCESSING, "dest": State.COMPLETED},
    {"trigger": Trigger.FAIL, "source": State.PROCESSING, "dest": State.FAILED},
    {"trigger": Trigger.CANCEL, "source": [State.QUEUED, State.PROCESSING], "dest": State.CANCELLED},
    {"trigger": Trigger.RETRY, "source": [State.FAILED, State.CANCELLED], "dest": State.QUEUED},
    {"trigger": Trigger.TIME_OUT, "source": State.PROCESSING, "dest": State.QUEUED,
     "conditions": [Guard.HAS_ATTEMPTS_LEFT]},
    {"trigger": Trigger.TIME_OUT, "source": State.PROCESSING, "dest": State.FAILED,
     "conditions": [Guard.ATTEMPTS_EXHAUSTED]},
    # The worker asks for the job to be tried again later (Retry, a transient error): like a
    # time_out, it uses up the attempt; the run queue holds the job back until its retry_after.
    {"trigger": Trigger.REQUEUE, "source": State.PROCESSING, "dest": State.QUEUED,
     "conditions": [Guard.HAS_ATTEMPTS_LEFT]},
    {"trigger": Trigger.REQUEUE, "source": State.PROCESSING, "dest": State.FAILED,
     "conditions": [Guard.ATTEMPTS_EXHAUSTED]},
    # A worker that shuts down gives the job back unfinished: the attempt it took is given back
    # too (attempts_left + 1, the guard's arithmetic), so a deploy never uses up a job's budget.
    {"trigger": Trigger.RELEASE, "source": State.PROCESSING, "dest": State.QUEUED},
    {"trigger": Trigger.UPDATE_METADATA, "source": list(LIVE_STATES), "dest": None},
    # A queued job's place in the claim order changes: its priority, or when it may run.
    {"trigger": Trigger.RESCHEDULE, "source": State.QUEUED, "dest": None},
    {"trigger": Trigger.DELETE,
     "source": [State.QUEUED, State.COMPLETED, State.FAILED, State.CANCELLED],
     "dest": State.DELETED},
    {"trigger": Trigger.VOID, "source": [*LIVE_STATES, State.DELETED], "dest": None},
]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the transition table."""

    trigger: Trigger
    from_state: State
    to_state: State
    guard: Guard | None


def _plain(value: object) -> object:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.value if isinstance(value, StrEnum) else value


def build_machine() -> Machine:
    """The `transitions` Machine: the human-readable source of truth."""
    return Machine(
        model=None,
        states=[s.value for s in State],
        transitions=[{k: _plain(v) for k, v in t.items()} for t in _DEFINITION],
        initial=State.ABSENT.value,
        auto_transitions=False,
    )


def _flatten(machine: Machine) -> tuple[Rule, ...]:
    rules = []
    for name, event in machine.events.items():
        for source, transitions in event.transitions.items():
            for t in transitions:
                rules.append(Rule(
                    trigger=Trigger(name),
                    from_state=State(source),
                    to_state=State(t.dest if t.dest is not None else source),
                    guard=_guard([c.func for c in t.conditions]),
                ))
    return tuple(sorted(rules, key=lambda r: (r.trigger, r.from_state, r.to_state)))


def _guard(conditions: list[str | Callable[..., bool | None]]) -> Guard | None:
    """A transition's guard: the first condition's name (_DEFINITION names its guards; none is a callable)."""
    if not conditions:
        return None
    if not isinstance(conditions[0], str):
        raise TypeError(f"guards are named (Guard), not callables: {conditions[0]!r}")
    return Guard(conditions[0])


RULES: tuple[Rule, ...] = _flatten(build_machine())


def _index(rules: tuple[Rule, ...]) -> Mapping[tuple[State, Trigger], tuple[Rule, ...]]:
    table: dict[tuple[State, Trigger], list[Rule]] = {}
    for rule in rules:
        table.setdefault((rule.from_state, rule.trigger), []).append(rule)
    return MappingProxyType({key: tuple(value) for key, value in table.items()})


TRANSITIONS: Mapping[tuple[State, Trigger], tuple[Rule, ...]] = _index(RULES)
ALLOWED_TRIGGERS: Mapping[State, frozenset[Trigger]] = MappingProxyType({
    state: frozenset(t for (s, t) in TRANSITIONS if s == state) for state in State
})
