"""Event payloads have real bounds; bad input raises ValidationError naming the field."""

from __future__ import annotations

import pytest

from statemachine import ValidationError, validate_payload
from tests.support.factories import create_data


def test_valid_create_payload_round_trips() -> None:
    payload = validate_payload("create", create_data())
    assert payload.model_dump(mode="json")["platform_target"] == "tiktok"
    assert payload.max_attempts == 3


@pytest.mark.parametrize(("field", "value"), [
    ("original_filename", ""),
    ("original_filename", "   "),
    ("original_filename", "a" * 256),
    ("original_filename", "../etc/passwd"),
    ("original_filename", "dir\\file.mp4"),
    ("original_filename", "bad\x00name.mp4"),
    ("original_filename", "bell\x07.mp4"),
    ("original_filename", "rtl\u202eevil.mp4"),
    ("original_filesize", -1),
    ("original_filesize", "big"),
    ("clip_count", 0),
    ("clip_count", 51),
    ("clip_count", 2.5),
    ("quality_preset", "4k-ultra"),
    ("enhancement_level", "'; DROP TABLE vjm.job_events; --"),
    ("platform_target", "myspace"),
    ("max_attempts", 0),
])
def test_bad_create_fields_are_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload("create", create_data(**{field: value}))
    assert info.value.field == field


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload("create", create_data(owner="someone-else"))
    assert info.value.field == "owner"


def test_output_paths_are_bounded_in_count_and_length() -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload("complete", {"output_paths": ["/c.mp4"] * 101})
    assert info.value.field == "output_paths"
    with pytest.raises(ValidationError) as info:
        validate_payload("complete", {"output_paths": ["/" + "x" * 1024]})
    assert info.value.field == "output_paths.0"


def test_error_text_is_bounded() -> None:
    assert validate_payload("fail", {"error": "Invalid video format"}).error == "Invalid video format"
    with pytest.raises(ValidationError) as info:
        validate_payload("fail", {"error": "x" * 4001})
    assert info.value.field == "error"


@pytest.mark.parametrize("percent", [-0.1, 100.1, float("nan"), float("inf")])
def test_progress_percent_is_bounded(percent: float) -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload("progress", {"percent": percent})
    assert info.value.field == "percent"


def test_metadata_update_needs_a_field() -> None:
    with pytest.raises(ValidationError):
        validate_payload("update_metadata", {})
    assert validate_payload("update_metadata", {"clip_count": 7}).clip_count == 7


def test_unknown_trigger_and_non_object_data() -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload("explode", {})
    assert info.value.field == "trigger"
    with pytest.raises(ValidationError) as info:
        validate_payload("fail", ["not", "an", "object"])  # type: ignore[arg-type]
    assert info.value.field == "data"
