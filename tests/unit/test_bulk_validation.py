"""Bulk create validation (one pydantic call for a whole batch) keeps the rules of one by one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NotRequired, get_type_hints

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import CreateData, State, Trigger, ValidationError, validate_payload
from statemachine.payloads import DEFAULT_MAX_ATTEMPTS, CreateFields, validate_creates
from store.events import NewCreates, new_job_ids, prepare_creates, prepare_event
from store.ids import new_job_id
from store.models import Event, construct_valid, event_from_row
from store.projections.fold import apply_event, created_row
from tests.support.factories import create_data
from videojobs.manager.bulk import _prepare_creates
from videojobs.models import Job

TEXT = st.one_of(st.sampled_from(["clip.mp4", "", " ", "a/b", "a\\b", ".", "..", "bell\x07", "rtl\u202e.mp4",
                                  "x" * 255, "x" * 256, "pro", "PRO", "tiktok", "basic", "ünïcødé.mov"]),
                 st.text(max_size=8))
VALUE = st.one_of(TEXT, st.integers(-2, 60), st.sampled_from([2**53, 2**53 + 1, True, False, 2.0, 2.5, None]))
FIELDS = [*CreateData.model_fields, "owner", "user_id"]


def one_by_one(data: dict[str, Any]) -> tuple:
    try:
        return ("ok", validate_payload("create", data).model_dump(mode="json", exclude_none=True))
    except ValidationError as exc:
        return ("error", exc.field, str(exc))


def as_batch(data: dict[str, Any]) -> tuple:
    try:
        return ("ok", validate_creates([data])[0])
    except ValidationError as exc:
        return ("error", exc.field.removeprefix("0."), str(exc).removeprefix("0."))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), VALUE, max_size=8), st.booleans())
def test_batch_accepts_refuses_and_stores_exactly_as_one_by_one(fields: dict[str, Any], start_valid: bool) -> None:
    data = {**create_data(), **fields} if start_valid else fields
    assert as_batch(data) == one_by_one(data)


def test_create_fields_and_create_data_declare_the_same_fields() -> None:
    fields, model = get_type_hints(CreateFields, include_extras=True), get_type_hints(CreateData, include_extras=True)
    assert list(fields) == list(model)
    for key, declared in model.items():  # an optional key may be left out of the dict: the default is added after
        assert fields[key] == (declared if CreateData.model_fields[key].is_required() else NotRequired[declared])
    assert CreateData.model_fields["max_attempts"].default == DEFAULT_MAX_ATTEMPTS


def test_batch_errors_name_the_index_of_the_first_bad_item() -> None:
    items = [create_data() for _ in range(50)]
    items[17] = create_data(clip_count=99)
    items[30] = create_data(platform_target="myspace")
    with pytest.raises(ValidationError) as info:
        validate_creates(items)
    assert info.value.field == "17.clip_count"


def test_prepare_creates_checks_ids_and_names_the_index() -> None:
    good = [create_data()] * 3
    with pytest.raises(ValidationError) as info:
        prepare_creates(good, ["a", "", "c"], [None] * 3, [None] * 3)
    assert info.value.field == "1.user_id"
    with pytest.raises(ValidationError) as info:
        prepare_creates(good, ["a", "b", "c"], [None, None, "not-a-uuid"], [None] * 3)
    assert info.value.field == "2.team_id"
    team = uuid.uuid4()
    creates = prepare_creates(good, ["a", "b", "c"], [None, str(team), team], ["x", None, "z"])
    assert creates.team_ids == [None, team, team] and creates.actors == ["x", None, "z"]
    assert creates.job_ids == [None] * 3  # the database issues them (an end user may not choose one: issue 15)


def test_batch_ids_are_uuid7_of_now() -> None:
    ids = new_job_ids(1000)
    assert len(set(ids)) == 1000
    millis = {j.int >> 80 for j in ids}
    now = datetime.now(UTC).timestamp() * 1000
    assert len(millis) == 1 and abs(millis.pop() - now) < 5000
    assert all(isinstance(j, uuid.UUID) and uuid.UUID(str(j)) == j for j in ids)
    assert all(j.version == 7 and j.variant == uuid.RFC_4122 for j in ids)
    one = new_job_id()  # the single-id path lays out the same bits, a moment later
    assert (one.version, one.variant) == (7, uuid.RFC_4122) and 0 <= (one.int >> 80) - (ids[0].int >> 80) < 5000


def _jobs(n: int) -> list[dict[str, Any]]:
    return [{"user_id": f"u{i % 3}", **create_data(original_filename=f"v{i}.mp4")} for i in range(n)]


@pytest.mark.parametrize(("index", "change", "field"), [
    (1999, {"clip_count": 0}, "jobs.1999.clip_count"),
    (1234, {"owner": "x"}, "jobs.1234.owner"),
    (5, {"user_id": ""}, "jobs.5.user_id"),
    (700, {"user_id": "u" * 129}, "jobs.700.user_id"),
    (42, {"team_id": "nope"}, "jobs.42.team_id"),
    (0, {"original_filename": "../x.mp4"}, "jobs.0.original_filename"),
])
def test_a_bad_job_deep_in_a_batch_is_named_as_one_by_one_names_it(index: int, change: dict, field: str) -> None:
    jobs = _jobs(2000)
    jobs[index] = {**jobs[index], **change}
    with pytest.raises(ValidationError) as info:
        _prepare_creates(jobs, None)
    assert info.value.field == field
    assert str(info.value).startswith(f"jobs[{index}]: ")


def test_the_first_bad_job_wins_whatever_its_fault() -> None:
    jobs = _jobs(100)
    jobs[60] = {**jobs[60], "clip_count": 0}
    jobs[20] = {**jobs[20], "user_id": ""}  # an id fault before a payload fault: still the earlier job
    jobs[80] = "not a job"
    with pytest.raises(ValidationError) as info:
        _prepare_creates(jobs, None)
    assert info.value.field == "jobs.20.user_id"
    jobs[20] = {**jobs[20], "clip_count": 0}  # both faults in one job: the payload is checked first
    with pytest.raises(ValidationError) as info:
        _prepare_creates(jobs, None)
    assert info.value.field == "jobs.20.clip_count"
    with pytest.raises(ValidationError) as info:
        _prepare_creates(_jobs(3) + ["not a job"], None)
    assert info.value.field == "jobs.3"


def test_batch_preparation_matches_prepare_event() -> None:
    team = uuid.uuid4()
    jobs = _jobs(10) + [{"user_id": "t", "team_id": str(team), "max_attempts": 5, **create_data()}]
    creates = _prepare_creates(jobs, "svc")
    one_by_one = NewCreates.of([prepare_event("create", {k: v for k, v in j.items() if k not in ("user_id", "team_id")},
                                              user_id=j["user_id"], team_id=j.get("team_id"), actor="svc")
                                for j in jobs])
    assert (creates.data, creates.user_ids, creates.team_ids, creates.actors) == (
        one_by_one.data, one_by_one.user_ids, one_by_one.team_ids, one_by_one.actors)
    assert _prepare_creates(jobs, "svc").actors == ["svc"] * len(jobs)


ROW = dict(position=7, xact_id=991, job_id=uuid.uuid4(), version=2, type="start", from_state="queued",
           to_state="processing", attempt=1, attempts_left=2, actor="w1", user_id="u", team_id=uuid.uuid4(),
           occurred_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), data={"worker_id": "w1"})


def test_event_from_row_equals_the_validated_model() -> None:
    built = event_from_row(ROW)
    validated = Event.model_validate(ROW)
    assert built == validated and built.model_dump_json() == validated.model_dump_json()
    assert isinstance(built.type, Trigger) and isinstance(built.to_state, State) and built.from_state is State.QUEUED
    assert repr(built) == repr(validated) and built.model_fields_set == validated.model_fields_set
    assert event_from_row({**ROW, "extra_column": 1, "data": None}, {"worker_id": "w2"}).data == {"worker_id": "w2"}
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        built.version = 3  # type: ignore[misc]
    create = event_from_row({**ROW, "type": "create", "from_state": None, "to_state": "queued"})
    assert create.from_state is None and create == Event.model_validate({**create.model_dump()})


def test_created_row_is_the_fold_of_the_create_event() -> None:
    event = event_from_row({**ROW, "version": 1, "type": "create", "from_state": None, "to_state": "queued",
                            "attempt": 0, "attempts_left": 4, "data": {**create_data(), "max_attempts": 4}})
    row = created_row(event.job_id, event.user_id, event.team_id, event.attempts_left, event.occurred_at,
                      event.position, event.data)
    assert row == apply_event(None, event) and list(row) == list(Job.model_fields)
    job = construct_valid(Job, row)
    assert job == Job.model_validate(row) and job.model_dump_json() == Job.model_validate(row).model_dump_json()


def test_a_null_run_at_is_stored_as_not_given_by_both() -> None:
    """JSON null means "not given": neither path stores the key (found by the property above)."""
    data = {**create_data(), "run_at": None}
    assert as_batch(data) == one_by_one(data)
    assert "run_at" not in as_batch(data)[1]
