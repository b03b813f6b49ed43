"""The checks of values that are not payload keys, each written once.

Payload keys follow the rule table (payload_rules.py; payloads.py builds the models). These
are the other values a caller names: whose job it is or who acts (a user id), a team's name,
the worker that claims jobs and the platforms it claims, and which keys a metadata change may name. Every check raises
ValidationError naming the field. The database holds the same bounds where it takes these
values (sql/schema/040_teams_and_rights.sql, 045_identity.sql, 060_write_api.sql); the HTTP
schemas state them from here (MAX_USER_ID, MAX_TEAM_NAME, payload_rules.LABEL_PATTERN).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from .errors import ValidationError
from .machine import Trigger
from .payload_rules import LABEL_REFUSED, MAX_WORKER_ID, REFUSALS, Chars, Platform, rules_of

MAX_USER_ID = 128
MAX_TEAM_NAME = 200
# The keys an update_metadata event may carry: the rule table's, in its order.
METADATA_FIELDS: tuple[str, ...] = tuple(rule.key for rule in rules_of(Trigger.UPDATE_METADATA))

# What a claim takes as its platforms: one, several (a list, tuple or set), or None for every platform.
PlatformTargets = str | Collection[str] | None

_REFUSED = {Chars.LINE: LABEL_REFUSED, Chars.TEXT: re.compile(Chars.TEXT.value)}


def check_user_id(value: object, field: str = "user_id") -> str:
    """A user id: a string of 1-128 characters on one line, without control, format or line separator characters."""
    return _string(value, field, MAX_USER_ID, Chars.LINE)


def check_team_name(value: object, field: str = "name") -> str:
    """A team's name: 1-200 characters, not blank, on one line, without control or format characters."""
    if isinstance(value, str) and not value.strip():
        raise ValidationError(f"{field} must not be blank", field=field)
    return _string(value, field, MAX_TEAM_NAME, Chars.LINE)


def check_worker_id(value: object, field: str = "worker_id") -> str:
    """A worker id, as the start payload's rule has it: 1-128 characters, no NUL or lone surrogate."""
    return _string(value, field, MAX_WORKER_ID, Chars.TEXT)


def check_platforms(value: object, field: str = "platform_target") -> tuple[str, ...] | None:
    """The platforms a claim names, as values in the order given (repeats dropped): None (every platform), one
    platform, or a non-empty list, tuple or set of them; ValidationError for anything else (vjm.check_platforms)."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple | set | frozenset) or not names:
        raise ValidationError(f"{field} must be a platform or a non-empty list of platforms", field=field)
    try:
        return tuple(dict.fromkeys(Platform(name).value for name in names))
    except ValueError:
        raise ValidationError(f"unknown {field}: one of {', '.join(Platform)} expected", field=field) from None


def _string(value: object, field: str, max_length: int, chars: Chars) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise ValidationError(f"{field} must be a string of 1-{max_length} characters", field=field)
    if _REFUSED[chars].search(value):
        raise ValidationError(f"{field} {REFUSALS[chars]}", field=field)
    return value


def check_metadata_fields(names: Iterable[str]) -> None:
    """Refuse a metadata change naming a key that is not metadata (METADATA_FIELDS); names the first, sorted."""
    unknown = sorted(set(names) - set(METADATA_FIELDS))
    if unknown:
        raise ValidationError(f"unknown metadata field {unknown[0]!r}", field=unknown[0])


def instant_text(value: datetime | str | None, field: str = "run_at") -> str | None:
    """An instant as the payload rules store it (RFC 3339 UTC, microseconds when there are any): from an
    aware datetime, or from text in RFC 3339 with any offset. ValidationError naming `field` otherwise."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{field} must be an instant in RFC 3339, e.g. 2026-12-06T10:00:00Z",
                                  field=field) from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{field} must be an instant with its offset (an aware datetime)", field=field)
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError(f"{field} is out of range", field=field) from None
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"
