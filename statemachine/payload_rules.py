"""The payload rules of every trigger, defined once, as a table.

One row per (trigger, key): the JSON type, whether it is required or may be null, its
bounds and the characters it refuses. Two enforcers read this table and nothing else:

- Python: `statemachine.payloads` builds its pydantic models from it;
- SQL: sql/schema/025_payload_rules.sql holds the same rows (`vjm.payload_rules`,
  `vjm.payload_shapes`) and compiles them into `vjm.payload_ok(trigger, data)`, which the
  guard asks for every caller (tests/integration/test_payload_rules.py compares the
  rows, and feeds hostile payloads to both enforcers).

The character classes are explicit code point ranges, not Unicode categories looked up at
run time, so that Python and PostgreSQL refuse exactly the same characters whatever
Unicode version either one ships. The ranges are every code point of the categories Cc,
Cf, Cs, Co, Zl and Zp in Unicode 14 (tests/unit/test_payload_rules.py checks that they
still cover this Python's categories).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .machine import Trigger


class Platform(StrEnum):
    """Where the clips are published."""

    TIKTOK = "tiktok"
    INSTAGRAM = "instagram"
    YOUTUBE_SHORTS = "youtube_shorts"


class QualityPreset(StrEnum):
    """Output quality chosen by the user."""

    DRAFT = "draft"
    STANDARD = "standard"
    PRO = "pro"
    ULTRA = "ultra"


class EnhancementLevel(StrEnum):
    """How much post-processing (denoise, upscale, colour) is applied."""

    NONE = "none"
    BASIC = "basic"
    ADVANCED = "advanced"
    MAXIMUM = "maximum"


class Kind(StrEnum):
    """The JSON type of a value."""

    STRING = "string"    # a string of min_length..max_length characters, none matching `refuse`
    CHOICE = "choice"    # one of `choices` (a string)
    INTEGER = "integer"  # a JSON number without fraction (not a bool, not a numeric string), minimum..maximum
    NUMBER = "number"    # any finite JSON number (not a bool, not a string), minimum..maximum
    STRINGS = "strings"  # an array of at most max_items strings, each as STRING


# Control (Cc), format (Cf: bidi overrides and isolates, zero-width characters, the BOM, ...),
# surrogate (Cs), private use (Co), line separator (Zl) and paragraph separator (Zp).
_INVISIBLE = ("\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2"
              "\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ud800-\\udfff\\ue000-\\uf8ff"
              "\\ufeff\\ufff9-\\ufffb\\U000110bd\\U000110cd\\U00013430-\\U00013438\\U0001bca0-\\U0001bca3"
              "\\U0001d173-\\U0001d17a\\U000e0001\\U000e0020-\\U000e007f\\U000f0000-\\U000ffffd"
              "\\U00100000-\\U0010fffd")
_SURROGATES = "\\ud800-\\udfff"
# Space separators (Zs): a name made only of these is blank.
_SPACES = "\\u0020\\u00a0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000"


class Chars(StrEnum):
    """What a string may not contain: a regular expression, the same text for Python's re and
    PostgreSQL's `~` (both read \\uXXXX and \\UXXXXXXXX escapes, \\A and \\Z). A match refuses."""

    # A file name: no invisible character, no path separator, not blank, not "." or "..".
    NAME = f"[/\\\\{_INVISIBLE}]|\\A[{_SPACES}]*\\Z|\\A\\.\\.?\\Z"
    # A path or a single line of text: no invisible character.
    LINE = f"[{_INVISIBLE}]"
    # An idempotency key: visible ASCII only, '!' to '~' (U+0021-U+007E; no space), so that any client can send
    # it as an HTTP header (the Idempotency-Key draft's sf-string) and it reads the same everywhere.
    KEY = "[^\\u0021-\\u007e]"
    # Free text (reasons, error messages, worker ids): anything but NUL and lone surrogates
    # (which jsonb cannot hold: PostgreSQL refuses them before any rule is asked).
    TEXT = "[\\u0000\\ud800-\\udfff]"
    # An instant in RFC 3339 UTC, e.g. 2026-12-06T10:00:00Z or 2026-12-06T10:00:00.250Z: years 0001-9999,
    # no leap second, at most microseconds. A day past the end of its month passes this pattern:
    # Python refuses it when it parses the value, PostgreSQL when it casts it (vjm.real_instant).
    TIMESTAMP = ("\\A(?!(?!0000)\\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\\d|3[01])T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d"
                 "(?:\\.\\d{1,6})?Z\\Z)")


# What each class refuses, in words: the message of every refusal, whichever check makes it.
REFUSALS: dict[Chars, str] = {
    Chars.NAME: "must be a file name: not blank, not . or .., without path separators, control, format or "
                "line separator characters",
    Chars.LINE: "must not contain control, format or line separator characters",
    Chars.KEY: "must contain only visible ASCII characters (! to ~, no space)",
    Chars.TEXT: "must not contain NUL characters or lone surrogates",
    Chars.TIMESTAMP: "must be an instant in RFC 3339 UTC, e.g. 2026-12-06T10:00:00Z",
}


def allowed_pattern(chars: Chars) -> str:
    """The strings `chars` lets through, as a JSON-schema `pattern` (the complement of its refusal):
    what the OpenAPI document tells clients, so that a schema-valid string is never refused. Lone
    surrogates are left out of the pattern: JSON text in UTF-8 cannot carry them (and regex engines
    of JSON-schema validators refuse the range); the server refuses them all the same."""
    invisible = _INVISIBLE.replace(_SURROGATES, "")
    if chars is Chars.NAME:
        return f"^(?!\\.\\.?$)(?![{_SPACES}]*$)[^/\\\\{invisible}]*$"
    if chars is Chars.KEY:
        return "^[\\u0021-\\u007e]*$"
    if chars is Chars.LINE:
        return f"^[^{invisible}]*$"
    if chars is Chars.TIMESTAMP:
        return "^" + chars.value.removeprefix("\\A(?!").removesuffix("\\Z)") + "$"
    return "^[^\\u0000]*$"


# A label a person reads (a user id, a team name): one line, no invisible character; a team
# name is not blank either. statemachine/validation.py checks these; the HTTP schema states them.
LABEL_REFUSED = re.compile(Chars.LINE.value)
LABEL_PATTERN = allowed_pattern(Chars.LINE)
NONBLANK_LABEL_PATTERN = f"^(?![{_SPACES}]*$)[^{_INVISIBLE.replace(_SURROGATES, '')}]*$"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One key of one trigger's payload."""

    trigger: Trigger
    key: str
    kind: Kind
    required: bool = False
    nullable: bool = False  # JSON null is allowed and means "not given" (optional keys only)
    minimum: int | float | None = None
    maximum: int | float | None = None
    min_length: int | None = None  # STRING, and each item of STRINGS: characters
    max_length: int | None = None
    max_items: int | None = None   # STRINGS
    chars: Chars | None = None     # STRING and STRINGS
    choices: type[StrEnum] | None = None  # CHOICE
    default: int | None = None     # what Python fills in when an optional key is left out

    def __post_init__(self) -> None:
        assert not (self.required and self.nullable), self
        assert (self.choices is not None) == (self.kind is Kind.CHOICE), self
        assert (self.chars is not None) == (self.kind in (Kind.STRING, Kind.STRINGS)), self


@dataclass(frozen=True, slots=True)
class ShapeRule:
    """What holds for a trigger's payload as a whole (beyond its keys)."""

    trigger: Trigger
    at_least_one: bool  # at least one key with a non-null value


MAX_FILENAME = 255
MAX_OUTPUT_PATHS = 100
MAX_PATH_LENGTH = 1024
MAX_ERROR_TEXT = 4000
MAX_REASON = 500
MAX_WORKER_ID = 128
MAX_ATTEMPTS_LIMIT = 20
MAX_CLIPS = 50
MAX_FILESIZE = 2**53
MAX_PROCESSING_TIME = 7 * 24 * 3600
MAX_IDLE_SECONDS = 10**9
MAX_RETRY_AFTER = 7 * 24 * 3600
MAX_PHASE = 64
MAX_LEASE_SECONDS = 86400
DEFAULT_MAX_ATTEMPTS = 3
# Positions are bigints, but a JSON integer above 2**53 - 1 is not exact in every reader, and a
# Python float at or above 1e16 encodes as '1e+16', which the database reads as a whole number
# while Python refuses it as a float: the bound keeps both enforcers on the same answer.
MAX_POSITION = 2**53 - 1
# A job's priority: higher is claimed first; 0 unless the create says otherwise.
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 9, 0
MAX_TIMESTAMP = len("2026-12-06T10:00:00.123456Z")
# A create's idempotency key (sql/schema/062_idempotency.sql): 1-200 characters of Chars.KEY.
MAX_IDEMPOTENCY_KEY = 200

_T = Trigger


def _reason(trigger: Trigger) -> FieldRule:
    return FieldRule(trigger, "reason", Kind.STRING, nullable=True, min_length=0, max_length=MAX_REASON,
                     chars=Chars.TEXT)


# The rules. The order of a trigger's keys is the order of its model's fields.
PAYLOAD_RULES: tuple[FieldRule, ...] = (
    FieldRule(_T.CREATE, "original_filename", Kind.STRING, required=True, min_length=1, max_length=MAX_FILENAME,
              chars=Chars.NAME),
    FieldRule(_T.CREATE, "original_filesize", Kind.INTEGER, required=True, minimum=0, maximum=MAX_FILESIZE),
    FieldRule(_T.CREATE, "clip_count", Kind.INTEGER, required=True, minimum=1, maximum=MAX_CLIPS),
    FieldRule(_T.CREATE, "quality_preset", Kind.CHOICE, required=True, choices=QualityPreset),
    FieldRule(_T.CREATE, "enhancement_level", Kind.CHOICE, required=True, choices=EnhancementLevel),
    FieldRule(_T.CREATE, "platform_target", Kind.CHOICE, required=True, choices=Platform),
    # The same key from the same owner within the window returns that job (sql/schema/062_idempotency.sql).
    FieldRule(_T.CREATE, "idempotency_key", Kind.STRING, min_length=1, max_length=MAX_IDEMPOTENCY_KEY,
              chars=Chars.KEY),
    FieldRule(_T.CREATE, "max_attempts", Kind.INTEGER, minimum=1, maximum=MAX_ATTEMPTS_LIMIT,
              default=DEFAULT_MAX_ATTEMPTS),
    FieldRule(_T.CREATE, "priority", Kind.INTEGER, minimum=MIN_PRIORITY, maximum=MAX_PRIORITY,
              default=DEFAULT_PRIORITY),
    # Not claimable before this instant (the run queue holds the job back until then).
    FieldRule(_T.CREATE, "run_at", Kind.STRING, nullable=True, min_length=1, max_length=MAX_TIMESTAMP,
              chars=Chars.TIMESTAMP),
    FieldRule(_T.START, "worker_id", Kind.STRING, nullable=True, min_length=1, max_length=MAX_WORKER_ID,
              chars=Chars.TEXT),
    FieldRule(_T.PROGRESS, "percent", Kind.NUMBER, nullable=True, minimum=0, maximum=100),
    FieldRule(_T.PROGRESS, "clips_done", Kind.INTEGER, nullable=True, minimum=0, maximum=MAX_CLIPS),
    FieldRule(_T.PROGRESS, "phase", Kind.STRING, nullable=True, min_length=1, max_length=MAX_PHASE, chars=Chars.LINE),
    FieldRule(_T.COMPLETE, "output_paths", Kind.STRINGS, required=True, max_items=MAX_OUTPUT_PATHS, min_length=1,
              max_length=MAX_PATH_LENGTH, chars=Chars.LINE),
    FieldRule(_T.COMPLETE, "processing_time", Kind.NUMBER, nullable=True, minimum=0, maximum=MAX_PROCESSING_TIME),
    FieldRule(_T.FAIL, "error", Kind.STRING, required=True, min_length=1, max_length=MAX_ERROR_TEXT,
              chars=Chars.TEXT),
    _reason(_T.CANCEL),
    _reason(_T.RETRY),
    _reason(_T.TIME_OUT),
    FieldRule(_T.TIME_OUT, "idle_seconds", Kind.NUMBER, nullable=True, minimum=0, maximum=MAX_IDLE_SECONDS),
    # A lease that ran out (sql/schema/065_workers.sql): when, as ISO 8601 UTC, and how long it was.
    FieldRule(_T.TIME_OUT, "lease_expires_at", Kind.STRING, nullable=True, min_length=1, max_length=64,
              chars=Chars.LINE),
    FieldRule(_T.TIME_OUT, "lease_seconds", Kind.NUMBER, nullable=True, minimum=0, maximum=MAX_LEASE_SECONDS),
    # The worker's Retry or transient error: why, and how long the run queue holds the job back.
    FieldRule(_T.REQUEUE, "error", Kind.STRING, nullable=True, min_length=1, max_length=MAX_ERROR_TEXT,
              chars=Chars.TEXT),
    _reason(_T.RELEASE),
    FieldRule(_T.REQUEUE, "retry_after", Kind.NUMBER, nullable=True, minimum=0, maximum=MAX_RETRY_AFTER),
    FieldRule(_T.UPDATE_METADATA, "original_filename", Kind.STRING, nullable=True, min_length=1,
              max_length=MAX_FILENAME, chars=Chars.NAME),
    FieldRule(_T.UPDATE_METADATA, "clip_count", Kind.INTEGER, nullable=True, minimum=1, maximum=MAX_CLIPS),
    FieldRule(_T.UPDATE_METADATA, "quality_preset", Kind.CHOICE, nullable=True, choices=QualityPreset),
    FieldRule(_T.UPDATE_METADATA, "enhancement_level", Kind.CHOICE, nullable=True, choices=EnhancementLevel),
    FieldRule(_T.UPDATE_METADATA, "platform_target", Kind.CHOICE, nullable=True, choices=Platform),
    FieldRule(_T.RESCHEDULE, "priority", Kind.INTEGER, nullable=True, minimum=MIN_PRIORITY, maximum=MAX_PRIORITY),
    FieldRule(_T.RESCHEDULE, "run_at", Kind.STRING, nullable=True, min_length=1, max_length=MAX_TIMESTAMP,
              chars=Chars.TIMESTAMP),
    _reason(_T.DELETE),
    # An admin's void names an earlier event of the job (its position) that the read models skip.
    FieldRule(_T.VOID, "position", Kind.INTEGER, required=True, minimum=1, maximum=MAX_POSITION),
    _reason(_T.VOID),
)

SHAPE_RULES: tuple[ShapeRule, ...] = tuple(
    ShapeRule(t, at_least_one=t in (Trigger.UPDATE_METADATA, Trigger.RESCHEDULE)) for t in Trigger)


def rules_of(trigger: Trigger) -> tuple[FieldRule, ...]:
    """The rows of one trigger, in field order."""
    return tuple(r for r in PAYLOAD_RULES if r.trigger is trigger)


def _sql_literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "ARRAY[" + ", ".join(_sql_literal(v) for v in value) + "]::text[]" if value else "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def sql_rows(rule: FieldRule) -> tuple:
    """The row of vjm.payload_rules this rule is (the column order of that table)."""
    choices = tuple(c.value for c in rule.choices) if rule.choices else ()
    return (rule.trigger.value, rule.key, rule.kind.value, rule.required, rule.nullable, rule.minimum, rule.maximum,
            rule.min_length, rule.max_length, rule.max_items, rule.chars.name.lower() if rule.chars else None,
            choices or None)


def sql_inserts() -> str:
    """The INSERT statements of sql/schema/025_payload_rules.sql (to paste after a rule change)."""
    rows = ",\n".join("    (" + ", ".join(_sql_literal(v) for v in sql_rows(r)) + ")" for r in PAYLOAD_RULES)
    chars = ",\n".join(f"    ({_sql_literal(c.name.lower())}, {_sql_literal(c.value)})" for c in Chars)
    shapes = ",\n".join(f"    ({_sql_literal(s.trigger.value)}, {_sql_literal(s.at_least_one)})" for s in SHAPE_RULES)
    return (f"INSERT INTO vjm.payload_chars (chars, refuse) VALUES\n{chars};\n\n"
            "INSERT INTO vjm.payload_rules (trigger, key, kind, required, nullable, minimum, maximum, min_length,\n"
            f"                               max_length, max_items, chars, choices) VALUES\n{rows};\n\n"
            f"INSERT INTO vjm.payload_shapes (trigger, at_least_one) VALUES\n{shapes};\n")


if __name__ == "__main__":  # python -m statemachine.payload_rules: print the rows for 025_payload_rules.sql
    print(sql_inserts(), end="")
