"""Reading a Server-Sent Events stream as the API writes it: `id:` and `data:` (JSON) lines, a blank line
ending each event, and `:` comment lines for heartbeats."""

from __future__ import annotations

import json


def is_comment(line: str) -> bool:
    """A comment line (the stream's heartbeat)."""
    return line.startswith(":")


class EventParser:
    """Folds the lines of a stream into events ({"id": int, "data": object}), one line at a time."""

    def __init__(self) -> None:
        self._current: dict = {}

    def feed(self, line: str) -> dict | None:
        """Take one non-comment line; the event it completes, if it is the blank line that ends one."""
        if line.startswith("id:"):
            self._current["id"] = int(line[3:].strip())
        elif line.startswith("data:"):
            self._current["data"] = json.loads(line[5:].strip())
        elif line == "" and "data" in self._current:
            event, self._current = self._current, {}
            return event
        return None
