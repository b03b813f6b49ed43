"""The fold is pure: any split of a job history into batches gives the same rows and stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import InvalidTransition, State, Trigger, next_state
from store.models import Event
from store.projections import DAILY_FIELDS, STATS_FIELDS, JobRow
from store.projections.deltas import contribution, scope_keys
from store.projections.fold import ProjectionGap, fold

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TEAM = uuid.UUID("7d9b5c4e-1f2a-4b3c-8d9e-0a1b2c3d4e5f")
CREATE = dict(original_filename="a.mp4", original_filesize=10, clip_count=3, quality_preset="pro",
              enhancement_level="basic", platform_target="tiktok", max_attempts=2)
DATA = {
    "start": {"worker_id": "w1"}, "progress": {"percent": 50.0, "clips_done": 1},
    "complete": {"output_paths": ["/o/1.mp4"]}, "fail": {"error": "bad format"},
    "time_out": {"reason": "idle"}, "update_metadata": {"clip_count": 7}, "cancel": {}, "retry": {},
    "delete": {},
}


class History:
    """Builds legal events for one job the way the database guard would."""

    def __init__(self, job_id: uuid.UUID, user: str = "u1", team: uuid.UUID | None = TEAM, position: int = 0):
        self.job_id, self.user, self.team = job_id, user, team
        self.state, self.version, self.attempt, self.left, self.position = State.ABSENT, 0, 0, 0, position
        self.events: list[Event] = []

    def add(self, trigger: str, seconds: float, data: dict | None = None) -> Event:
        to = next_state(self.state, Trigger(trigger), attempts_left=self.left)
        self.attempt += trigger == "start"
        self.left = {"create": 2, "start": self.left - 1, "retry": 2}.get(trigger, self.left)
        self.version += 1
        self.position += 1
        event = Event(position=self.position, xact_id=self.position, job_id=self.job_id, version=self.version,
                      type=trigger, from_state=None if trigger == "create" else self.state, to_state=to,
                      attempt=self.attempt, attempts_left=self.left, actor="t", user_id=self.user,
                      team_id=self.team, occurred_at=T0 + timedelta(seconds=seconds),
                      data=data if data is not None else (CREATE if trigger == "create" else DATA[trigger]))
        self.state = to
        self.events.append(event)
        return event


def test_lifecycle_fields() -> None:
    h = History(uuid.uuid4())
    for i, trigger in enumerate(["create", "start", "progress", "complete"]):
        h.add(trigger, i * 10.0)
    row = fold({}, h.events).rows[h.job_id]
    assert (row.status, row.version, row.attempt, row.attempts_left, row.max_attempts) == ("completed", 4, 1, 1, 2)
    assert (row.worker_id, row.clips_done, row.progress_percent, row.output_paths) == ("w1", 1, 100.0, ["/o/1.mp4"])
    assert row.started_at == T0 + timedelta(seconds=10) and row.completed_at == T0 + timedelta(seconds=30)
    assert row.processing_time == 20.0  # computed: nothing reported
    assert row.created_at == T0 and row.last_activity_at == row.completed_at and row.last_position == 4


def test_reported_processing_time_wins() -> None:
    h = History(uuid.uuid4())
    h.add("create", 0)
    h.add("start", 1)
    h.add("complete", 100, {"output_paths": [], "processing_time": 12.3456})
    assert fold({}, h.events).rows[h.job_id].processing_time == 12.346


def test_retry_and_time_out_rules() -> None:
    h = History(uuid.uuid4())
    for i, trigger in enumerate(["create", "start", "fail"]):
        h.add(trigger, i)
    failed = fold({}, h.events).rows[h.job_id]
    assert (failed.status, failed.error_message, failed.processing_time) == ("failed", "bad format", 1.0)
    h.add("retry", 5)
    retried = fold({}, h.events).rows[h.job_id]
    assert (retried.status, retried.completed_at, retried.processing_time) == ("queued", None, None)
    assert retried.error_message == "bad format" and retried.attempts_left == 2
    h.add("start", 6)
    h.add("time_out", 9)
    requeued = fold({}, h.events).rows[h.job_id]
    assert (requeued.status, requeued.error_message, requeued.completed_at, requeued.worker_id) == \
        ("queued", "idle", None, None)
    h.add("start", 10)
    h.add("time_out", 14)
    dead = fold({}, h.events).rows[h.job_id]
    assert (dead.status, dead.attempts_left, dead.processing_time) == ("failed", 0, 4.0)
    assert dead.completed_at == T0 + timedelta(seconds=14)


def test_a_cancel_records_cancelled_at_not_a_completion() -> None:
    """completed_at is for complete and fail (the specification); a cancel has its own time, and no
    processing_time: the attempt reached no outcome (started_at to cancelled_at is how long it ran)."""
    h = History(uuid.uuid4())
    h.add("create", 0)
    h.add("start", 10)
    h.add("cancel", 25)
    result = fold({}, h.events)
    row = result.rows[h.job_id]
    assert (row.status, row.completed_at, row.processing_time) == ("cancelled", None, None)
    assert row.cancelled_at == T0 + timedelta(seconds=25) and row.started_at == T0 + timedelta(seconds=10)
    assert result.stats[("user", "u1")][STATS_FIELDS.index("timed_jobs")] == 0  # not in the average
    [(_, bucket)] = [(k, v) for k, v in result.daily.items() if k[0] == "user"]
    assert bucket[DAILY_FIELDS.index("cancelled_jobs")] == 1 and bucket[DAILY_FIELDS.index("processing_ms")] == 0
    h.add("retry", 30)
    again = fold({}, h.events).rows[h.job_id]
    assert (again.status, again.cancelled_at, again.completed_at) == ("queued", None, None)
    h.add("start", 40)
    h.add("complete", 50)
    done = fold({}, h.events).rows[h.job_id]
    assert (done.cancelled_at, done.completed_at, done.processing_time) == (None, T0 + timedelta(seconds=50), 10.0)


def test_delete_removes_the_row_and_its_stats() -> None:
    h = History(uuid.uuid4())
    h.add("create", 0)
    before = fold({}, h.events)
    h.add("delete", 1)
    after = fold({h.job_id: before.rows[h.job_id]}, h.events[1:])
    assert after.rows == {h.job_id: None}
    assert after.stats == {("user", "u1"): [-1, -1, 0, 0, 0, 0, 0, 0], ("team", str(TEAM)): [-1, -1, 0, 0, 0, 0, 0, 0],
                           ("member", f"{TEAM}:u1"): [-1, -1, 0, 0, 0, 0, 0, 0]}


def test_platform_counters_follow_status_platform_changes_and_deletes() -> None:
    h = History(uuid.uuid4(), team=None)
    h.add("create", 0)
    created = fold({}, h.events)
    assert created.platforms == {("user", "u1", "tiktok"): [1, 1, 0, 0, 0, 0]}
    h.add("start", 1)
    h.add("update_metadata", 2, {"platform_target": "instagram"})
    moved = fold({h.job_id: created.rows[h.job_id]}, h.events[1:])
    assert moved.platforms == {("user", "u1", "tiktok"): [-1, -1, 0, 0, 0, 0],
                               ("user", "u1", "instagram"): [1, 0, 1, 0, 0, 0]}
    h.add("cancel", 3)
    h.add("delete", 4)
    gone = fold({h.job_id: moved.rows[h.job_id]}, h.events[3:])
    assert gone.platforms == {("user", "u1", "instagram"): [-1, 0, -1, 0, 0, 0]}


def test_event_for_unknown_job_is_a_gap() -> None:
    h = History(uuid.uuid4())
    h.add("create", 0)
    h.add("start", 1)
    with pytest.raises(ProjectionGap):
        fold({}, h.events[1:])


def test_metadata_update_and_daily_buckets() -> None:
    h = History(uuid.uuid4(), team=None)
    for i, trigger in enumerate(["create", "update_metadata", "start", "complete"]):
        h.add(trigger, i * 3600.0 * 5)
    result = fold({}, h.events)
    assert result.rows[h.job_id].clip_count == 7
    day = (T0 + timedelta(hours=15)).date()
    assert result.daily == {("user", "u1", day): [1, 0, 0, 5 * 3600 * 1000]}


def _random_history(draw, job_index: int) -> History:
    h = History(uuid.UUID(int=job_index + 1), user=draw(st.sampled_from(["u1", "u2"])),
                team=draw(st.sampled_from([TEAM, None])), position=job_index * 1000)
    h.add("create", 0)
    for step in range(draw(st.integers(0, 12))):
        trigger = draw(st.sampled_from(sorted(DATA)))
        try:
            h.add(trigger, step + draw(st.floats(0.5, 5000)))
        except InvalidTransition:
            continue
        if h.state == State.DELETED:
            break
    return h


@st.composite
def histories(draw) -> tuple[list[Event], list[int]]:
    jobs = [_random_history(draw, i) for i in range(draw(st.integers(1, 5)))]
    merged = sorted((e for h in jobs for e in h.events), key=lambda e: (e.occurred_at, e.position))
    # Any interleaving that keeps each job's versions in order is a possible commit order.
    merged.sort(key=lambda e: e.version)
    cuts = sorted(draw(st.lists(st.integers(0, len(merged)), max_size=6)))
    return merged, cuts


@settings(max_examples=200, deadline=None)
@given(histories())
def test_incremental_batches_equal_one_fold(case) -> None:
    events, cuts = case
    whole = fold({}, events)
    rows: dict = {}
    stats: dict = {}
    daily: dict = {}
    platforms: dict = {}
    for start, stop in zip([0, *cuts], [*cuts, len(events)], strict=True):
        part = fold({k: v for k, v in rows.items() if v is not None}, events[start:stop])
        rows.update(part.rows)
        for total, delta in ((stats, part.stats), (daily, part.daily), (platforms, part.platforms)):
            for key, vector in delta.items():
                total[key] = [a + b for a, b in zip(total.get(key, [0] * len(vector)), vector, strict=True)]
    assert rows == whole.rows
    for row in (r for r in whole.rows.values() if r is not None):  # built unvalidated: every field, right types
        assert row == JobRow.model_validate(row.model_dump()) and row.model_fields_set == set(JobRow.model_fields)
    assert {k: v for k, v in daily.items() if any(v)} == whole.daily
    recount: dict = {}
    by_platform: dict = {}
    for row in (r for r in rows.values() if r is not None):
        for key in scope_keys(row.user_id, row.team_id):
            recount[key] = [a + b for a, b in zip(recount.get(key, [0] * 8), contribution(row), strict=True)]
            pkey = (*key, row.platform_target)
            by_platform[pkey] = [a + b for a, b in zip(by_platform.get(pkey, [0] * 6), contribution(row)[:6],
                                                       strict=True)]
    assert {k: v for k, v in stats.items() if any(v)} == recount
    assert {k: v for k, v in platforms.items() if any(v)} == by_platform


def test_a_fold_counts_its_events_by_type() -> None:
    h = History(uuid.uuid4())
    for i, trigger in enumerate(["create", "start", "progress", "progress", "fail", "retry"]):
        h.add(trigger, i)
    assert fold({}, h.events).transitions == {"create": 1, "start": 1, "progress": 2, "fail": 1, "retry": 1}
    # Split in two batches, the counts add up to the same.
    first = fold({}, h.events[:3])
    second = fold({h.job_id: first.rows[h.job_id]}, h.events[3:])
    merged = {k: first.transitions.get(k, 0) + second.transitions.get(k, 0)
              for k in first.transitions.keys() | second.transitions.keys()}
    assert merged == fold({}, h.events).transitions
