"""The checks of values that are not payload keys (statemachine.validation): one rule each, used everywhere."""

from __future__ import annotations

import pytest

from statemachine import MetadataData, ValidationError
from statemachine.validation import (
    MAX_TEAM_NAME,
    MAX_USER_ID,
    METADATA_FIELDS,
    check_metadata_fields,
    check_team_name,
    check_user_id,
    check_worker_id,
)


@pytest.mark.parametrize("value", ["alice", "u" * MAX_USER_ID, "ünïcødé user", "$1", "'; DROP TABLE x; --"])
def test_user_ids_of_one_printable_line_pass(value: str) -> None:
    assert check_user_id(value) == value


@pytest.mark.parametrize("value", ["", "u" * (MAX_USER_ID + 1), 42, None, b"alice", ["alice"], "new\nline",
                                   "bell\x07", "rtl\u202e", "zero\u200bwidth", "line\u2028sep"])
def test_other_user_ids_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_user_id(value, field="3.user_id")
    assert info.value.field == "3.user_id"


@pytest.mark.parametrize("value", ["", "   ", "\u3000", "x" * (MAX_TEAM_NAME + 1), "tab\tname", 7])
def test_blank_long_or_invisible_team_names_are_refused(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_team_name(value)
    assert info.value.field == "name"
    assert check_team_name(" studio ") == " studio "


@pytest.mark.parametrize("value", ["", "w" * 129, "nul\x00", "\ud800", 3])
def test_worker_ids_follow_the_start_payloads_rule(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_worker_id(value)
    assert info.value.field == "worker_id"
    assert check_worker_id("worker-1\ttab") == "worker-1\ttab"  # free text: only NUL and lone surrogates are refused


def test_metadata_fields_are_the_update_metadata_payloads_keys() -> None:
    assert METADATA_FIELDS == tuple(MetadataData.model_fields)
    check_metadata_fields(["clip_count", "platform_target"])
    with pytest.raises(ValidationError) as info:
        check_metadata_fields(["status", "clip_count", "attempt"])
    assert info.value.field == "attempt"
