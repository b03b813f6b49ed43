"""One validator, two enforcers: vjm.payload_ok (compiled from vjm.payload_rules) refuses
exactly what statemachine's models (built from statemachine.payload_rules) refuse."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine import Trigger, ValidationError, validate_payload
from statemachine.payload_rules import PAYLOAD_RULES, SHAPE_RULES, Chars, FieldRule, Kind, rules_of, sql_rows
from statemachine.validation import instant_text
from store import connect


async def test_the_rule_tables_equal_the_python_rules(pool) -> None:
    rows = await pool.fetch("SELECT trigger, key, kind, required, nullable, minimum, maximum, min_length, max_length,"
                            " max_items, chars, choices FROM vjm.payload_rules")
    stored = {(r["trigger"], r["key"]): tuple(tuple(v) if isinstance(v, list) else v for v in r.values())
              for r in rows}
    expected = {(rule.trigger.value, rule.key): sql_rows(rule) for rule in PAYLOAD_RULES}
    assert stored == expected
    chars = {r["chars"]: r["refuse"] for r in await pool.fetch("SELECT chars, refuse FROM vjm.payload_chars")}
    assert chars == {c.name.lower(): c.value for c in Chars}
    shapes = {r["trigger"]: r["at_least_one"] for r in await pool.fetch("SELECT * FROM vjm.payload_shapes")}
    assert shapes == {s.trigger.value: s.at_least_one for s in SHAPE_RULES}
    assert set(shapes) == {t.value for t in Trigger}


# Hostile values: wrong types, bools for numbers, numeric strings, huge and fractional numbers,
# boundaries, bidi controls, line and paragraph separators, NUL, lone surrogates, deep nesting.
NASTY_CHARS = ["\u202e", "\u2066", "\u2028", "\u2029", "\x00", "\x07", "\x85", "\ufeff", "\u200b", "\ud800",
               "\U000e0041", "\ue000", "/", "\\", ".", " ", "\u3000", "\u00a0", "a", "é", "日", "\U0001f600"]
TEXT = st.one_of(st.text(st.sampled_from(NASTY_CHARS), max_size=6), st.text(max_size=6),
                 st.sampled_from(["", ".", "..", "...", " ", "1", "1.5", "-1", "true", "null", "pro", "tiktok",
                                  "basic", "a.mp4"]))
NUMBER = st.one_of(st.integers(-(2**70), 2**70), st.integers(-5, 60),
                   st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.5, 2.0, 1e30, 1e300, -0.0]))
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


NESTED = st.one_of(st.integers(2, 200).map(_nested), st.lists(SCALAR, max_size=3),
                   st.dictionaries(TEXT, SCALAR, max_size=2))


def _edge_values(rule: FieldRule) -> list[Any]:
    """Values at and just past the rule's limits."""
    values: list[Any] = [True, False, None, "1", [], {}, [1], 0.5]
    if rule.minimum is not None:
        values += [rule.minimum, rule.maximum, rule.minimum - 1, rule.maximum + 1, rule.maximum + 0.5,
                   rule.minimum - 0.001, float(rule.maximum), float(rule.minimum), rule.maximum * 10**20,
                   str(rule.maximum), 1e300, -1e300]
    if rule.chars is Chars.TIMESTAMP:
        values += ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "0000-01-01T00:00:00Z",
                   "2030-02-28T10:00:00Z", "2028-02-29T10:00:00Z", "2030-02-29T10:00:00Z", "2030-04-31T10:00:00Z",
                   "2030-12-06T24:00:00Z", "2030-12-06T23:59:60Z", "2030-12-06T10:00:00.1234567Z",
                   "2030-12-06T10:00:00+00:00", "2030-12-06 10:00:00Z", "2030-12-06T10:00:00z", "2030-13-01T00:00:00Z"]
    if rule.max_length is not None:
        lengths = [0, 1, rule.min_length or 0, rule.max_length, rule.max_length + 1]
        texts = ["x" * n for n in lengths] + ["y" * (rule.max_length - 1) + "\u2028", "\u202eevil", "a\u2029b",
                                              "a/b", "..", " "]
        if rule.kind is Kind.STRINGS:
            values += [[t] for t in texts] + [["p"] * (rule.max_items + k) for k in (0, 1)] + [["a", 1], [None]]
        else:
            values += texts
    if rule.choices is not None:
        values += [c.value for c in rule.choices] + [c.value.upper() for c in rule.choices]
    return values


def _edges(rule: FieldRule) -> st.SearchStrategy:
    return st.sampled_from(_edge_values(rule))


def _valid_value(rule: FieldRule) -> Any:
    return {Kind.CHOICE: lambda: next(iter(rule.choices)).value, Kind.INTEGER: lambda: rule.minimum,
            Kind.NUMBER: lambda: rule.maximum,
            Kind.STRING: lambda: "2030-12-06T10:00:00Z" if rule.chars is Chars.TIMESTAMP else "a" * max(rule.min_length or 0, 1),
            Kind.STRINGS: lambda: ["/out/a.mp4"]}[rule.kind]()


def _valid(rule: FieldRule) -> st.SearchStrategy:
    if rule.kind is Kind.CHOICE:
        return st.sampled_from([c.value for c in rule.choices])
    if rule.kind is Kind.INTEGER:
        return st.integers(int(rule.minimum), int(rule.maximum))
    if rule.kind is Kind.NUMBER:
        return st.floats(rule.minimum, rule.maximum) | st.integers(int(rule.minimum), int(rule.maximum))
    if rule.chars is Chars.TIMESTAMP:
        return st.datetimes(timezones=st.just(dt.UTC)).map(instant_text)
    word = st.text(st.sampled_from("abc.- é日"), min_size=max(rule.min_length or 0, 1), max_size=8)
    word = word.filter(lambda s: s.strip(" ") not in ("", ".", ".."))
    return st.lists(word, max_size=3) if rule.kind is Kind.STRINGS else word


def payloads(trigger: Trigger) -> st.SearchStrategy:
    rules = rules_of(trigger)
    keys = [r.key for r in rules]
    base = st.fixed_dictionaries({r.key: _valid(r) for r in rules if r.required},
                                 optional={r.key: _valid(r) | st.none() for r in rules if not r.required})
    edges = {r.key: st.one_of(_edges(r), _valid(r)) for r in rules}
    value_for = {r.key: st.one_of(edges[r.key], SCALAR, NESTED) for r in rules}
    changes = st.lists(st.one_of(
        st.sampled_from(keys).flatmap(lambda k: st.tuples(st.just("set"), st.just(k), value_for[k])),
        st.tuples(st.just("drop"), st.sampled_from(keys), st.none()),
        st.tuples(st.just("add"), TEXT | st.sampled_from(["owner", "reason", "percent", "user_id"]), SCALAR),
    ), max_size=3) if keys else st.lists(st.tuples(st.just("add"), TEXT, SCALAR), max_size=2)

    def apply(data: dict, steps: list) -> dict:
        data = dict(data)
        for op, key, value in steps:
            if op == "drop":
                data.pop(key, None)
            else:
                data[key] = value
        return data
    whole = st.one_of(SCALAR, st.lists(SCALAR, max_size=2))  # not an object at all
    edge = st.sampled_from(keys).flatmap(lambda k: st.builds(lambda d, v: {**d, k: v}, base, edges[k])) if keys \
        else base
    hostile = st.sampled_from(keys).flatmap(lambda k: st.builds(lambda d, v: {**d, k: v}, base,
                                                                 st.one_of(SCALAR, NESTED))) if keys else base
    # Valid payloads, one key at its limits (most often), one key hostile, several changes, no object.
    return st.one_of(base, edge, edge, edge, hostile, st.builds(apply, base, changes), whole)


def python_accepts(trigger: Trigger, data: Any) -> bool:
    try:
        validate_payload(trigger, data if isinstance(data, dict) else data)
    except ValidationError:
        return False
    return isinstance(data, dict)  # None and non-objects: the SQL entry points refuse them as 'data'


async def sql_accepts(conn: asyncpg.Connection, trigger: Trigger, data: Any) -> bool:
    try:
        return await conn.fetchval("SELECT vjm.payload_ok($1, $2::text::jsonb)", trigger.value, json.dumps(data))
    except asyncpg.DataError:  # NUL, a lone surrogate: PostgreSQL holds no such JSON
        return False


@pytest.mark.parametrize("trigger", list(Trigger))
def test_sql_refuses_exactly_when_python_refuses(database_url: str, trigger: Trigger) -> None:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(connect(database_url))
    seen = {True: 0, False: 0}

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)  # the same examples in every run: CI stays reproducible
    @given(data=payloads(trigger))
    def check(data: Any) -> None:
        expected = python_accepts(trigger, data)
        assert loop.run_until_complete(sql_accepts(conn, trigger, data)) is expected, (trigger, data)
        seen[expected] += 1

    try:
        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
    assert seen[True] and seen[False], seen  # both sides of the rule were exercised


async def test_every_limit_of_every_rule_agrees(pool) -> None:
    """Deterministic, beside the random search: each key of each trigger at each of its edges,
    the rest of the payload valid; the key left out; and every trigger's bare minimum."""
    async with pool.acquire() as conn:
        for trigger in Trigger:
            rules = rules_of(trigger)
            valid = {r.key: _valid_value(r) for r in rules}
            minimal = {r.key: _valid_value(r) for r in rules if r.required}
            cases = [valid, minimal, {**valid, "extra": 1}]
            for rule in rules:
                cases += [{**valid, rule.key: v} for v in _edge_values(rule)]
                cases.append({k: v for k, v in valid.items() if k != rule.key})
            for data in cases:
                assert await sql_accepts(conn, trigger, data) is python_accepts(trigger, data), (trigger, data)
            assert python_accepts(trigger, valid), trigger
