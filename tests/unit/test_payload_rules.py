"""The payload rule table is the one definition: the models are built from it, strictly."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from statemachine import Trigger, ValidationError, validate_payload
from statemachine.payload_rules import _INVISIBLE, PAYLOAD_RULES, SHAPE_RULES, Chars, Kind, rules_of
from statemachine.payloads import PAYLOADS, CreateFields
from tests.support.factories import create_data


def test_the_invisible_ranges_are_every_control_format_private_surrogate_and_separator_code_point() -> None:
    invisible = re.compile(f"[{_INVISIBLE}]")
    categories = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
    wrong = [hex(c) for c in range(sys.maxunicode + 1)
             if (unicodedata.category(chr(c)) in categories) != bool(invisible.match(chr(c)))]
    assert wrong == [], f"Unicode {unicodedata.unidata_version} differs from the ranges at {wrong[:10]}"


def test_every_trigger_has_a_model_built_from_exactly_its_rows() -> None:
    assert {s.trigger for s in SHAPE_RULES} == set(Trigger) == set(PAYLOADS)
    for trigger, model in PAYLOADS.items():
        rows = rules_of(trigger)
        assert list(model.model_fields) == [r.key for r in rows], trigger
        for row in rows:
            assert model.model_fields[row.key].is_required() is row.required, (trigger, row.key)
    create = rules_of(Trigger.CREATE)
    assert list(CreateFields.__annotations__) == [r.key for r in create]
    assert {r.key for r in create if r.required} == set(CreateFields.__required_keys__)


@pytest.mark.parametrize("rule", [r for r in PAYLOAD_RULES if r.kind in (Kind.INTEGER, Kind.NUMBER)],
                         ids=lambda r: f"{r.trigger}.{r.key}")
@pytest.mark.parametrize("value", [True, False, "1", "1.5", "", [1], {"v": 1}])
def test_numbers_are_strict_no_bools_and_no_numeric_strings(rule, value) -> None:
    data = {Trigger.CREATE: create_data(), Trigger.VOID: {"position": 1},
            Trigger.COMPLETE: {"output_paths": []}}.get(rule.trigger, {})
    with pytest.raises(ValidationError) as info:
        validate_payload(rule.trigger, {**data, rule.key: value})
    assert info.value.field == rule.key


@pytest.mark.parametrize("name", ["line\u2028sep.mp4", "para\u2029sep.mp4", "rtl\u202egnp.mp4", "iso\u2067x.mp4",
                                  "bom\ufeff.mp4", "\u3000", "\u00a0 ", ".", ".."])
def test_file_names_refuse_bidi_controls_separators_and_blanks(name: str) -> None:
    for trigger, data in (("create", create_data(original_filename=name)), ("update_metadata",
                                                                           {"original_filename": name})):
        with pytest.raises(ValidationError) as info:
            validate_payload(trigger, data)
        assert info.value.field == "original_filename"


@pytest.mark.parametrize("name", ["holiday.mp4", "...", "été 2024 – final.mov", "日本語.mp4", "a b", "x" * 255])
def test_ordinary_file_names_pass(name: str) -> None:
    assert validate_payload("create", create_data(original_filename=name)).original_filename == name


def test_the_character_classes_are_one_pattern_for_python_and_sql() -> None:
    # Escapes only (no raw special characters), so the SQL literal and the Python pattern are one text.
    for chars in Chars:
        assert chars.value.isascii() and chars.value.isprintable(), chars


def test_nulls_mean_absent_only_for_optional_keys() -> None:
    assert validate_payload("progress", {"percent": None}).percent is None
    with pytest.raises(ValidationError):
        validate_payload("fail", {"error": None})
    with pytest.raises(ValidationError):
        validate_payload("create", create_data(max_attempts=None))
    with pytest.raises(ValidationError):
        validate_payload("update_metadata", {"clip_count": None})  # at least one value
