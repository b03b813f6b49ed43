"""The fold of the worker runtime's triggers: requeue (Retry, transient errors) and release (shutdown)."""

from __future__ import annotations

import uuid

from store.projections.fold import fold
from tests.unit.test_fold import History


def _history(*steps: tuple[str, dict | None]) -> History:
    history = History(uuid.uuid4())
    for i, (trigger, data) in enumerate(steps):
        history.add(trigger, i * 10.0, data)
    return history


def test_a_release_queues_the_job_unfinished_and_gives_back_its_attempt() -> None:
    history = _history(("create", None), ("start", None), ("release", {"reason": "deploy"}))
    history.events[-1] = history.events[-1].model_copy(update={"attempts_left": 2})  # the guard's arithmetic
    result = fold({}, history.events)
    row = result.rows[history.job_id]
    assert (row.status, row.attempt, row.attempts_left, row.worker_id) == ("queued", 1, 2, None)
    assert (row.completed_at, row.processing_time, row.error_message) == (None, None, None)
    assert not result.daily  # a release is not a failure


def test_a_requeue_records_its_error_and_counts_as_failed_only_when_final() -> None:
    back = _history(("create", None), ("start", None), ("requeue", {"error": "Retry: busy", "retry_after": 5}))
    result = fold({}, back.events)
    row = result.rows[back.job_id]
    assert (row.status, row.error_message, row.worker_id, row.completed_at) == ("queued", "Retry: busy", None, None)
    assert not result.daily
    final = _history(("create", None), ("start", None), ("requeue", {"error": "a"}), ("start", None),
                     ("requeue", {"error": "b"}))
    result = fold({}, final.events)
    row = result.rows[final.job_id]
    assert (row.status, row.error_message) == ("failed", "b")
    assert row.completed_at is not None and row.processing_time == 10.0
    assert sum(bucket[1] for bucket in result.daily.values()) == len(result.daily)  # one failure per scope
