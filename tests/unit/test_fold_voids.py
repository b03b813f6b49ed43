"""Voids in the fold: a voided event's payload is skipped, its state change stands; a voided create hides the job."""

from __future__ import annotations

import uuid

import pytest

from store.projections.fold import ProjectionGap, Voids, apply_stream, fold
from tests.unit.test_fold import History


def _voids(*events) -> Voids:
    return Voids.of((e.position, e.job_id, str(e.type)) for e in events)


def test_a_voided_event_that_the_fold_cannot_apply_is_skipped_and_its_state_change_stands() -> None:
    h = History(uuid.uuid4())
    h.add("create", 0)
    h.add("start", 1)
    bad = h.add("fail", 2, data={})  # no "error": the fail handler raises KeyError
    with pytest.raises(KeyError):
        fold({}, h.events)
    void = h.add("void", 3, data={"position": bad.position, "reason": "bad payload"})
    row = fold({}, h.events, _voids(bad)).rows[h.job_id]
    assert (row.status, row.version, row.last_position) == ("failed", void.version, void.position)
    assert row.error_message is None and row.completed_at is None  # the payload's fields were not applied
    assert apply_stream(None, h.events) == dict(row)  # a job's own stream carries its voids


def test_voided_or_not_the_same_events_fold_to_the_same_rows_in_any_split() -> None:
    h = History(uuid.uuid4())
    for i, trigger in enumerate(["create", "start", "progress", "update_metadata", "complete"]):
        h.add(trigger, i)
    voids = _voids(h.events[3])
    whole = fold({}, h.events, voids)
    first = fold({}, h.events[:3], voids)
    second = fold({k: v for k, v in first.rows.items() if v is not None}, h.events[3:], voids)
    assert second.rows == whole.rows and whole.rows[h.job_id].clip_count == 3  # the update was skipped


def test_a_voided_create_hides_the_job_and_every_later_event_of_it() -> None:
    h = History(uuid.uuid4())
    create = h.add("create", 0, data={})  # the fold cannot make a row of it
    h.add("update_metadata", 1)
    h.add("void", 2, data={"position": create.position, "reason": "empty create"})
    voids = _voids(create)
    assert fold({}, h.events, voids).rows == {h.job_id: None}
    assert fold({}, h.events[1:], voids).rows == {h.job_id: None}  # a later batch: no ProjectionGap
    assert apply_stream(None, h.events) is None


def test_without_a_void_a_missing_row_is_still_a_gap() -> None:
    h = History(uuid.uuid4())
    h.add("create", 0)
    h.add("start", 1)
    with pytest.raises(ProjectionGap):
        fold({}, h.events[1:])


def test_a_void_of_an_event_of_a_deleted_job_leaves_it_deleted() -> None:
    h = History(uuid.uuid4())
    h.add("create", 0)
    bad = h.add("update_metadata", 1, data={"clip_count": "many"})
    h.add("delete", 2)
    h.add("void", 3, data={"position": bad.position, "reason": "x"})
    assert fold({}, h.events, _voids(bad)).rows == {h.job_id: None}
