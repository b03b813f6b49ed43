"""Claim latency computed in Python from the stored events, apart from vjm.claim_waits: the tests' expected values.

A start's wait counts from when its job became claimable for that attempt: the later of the event
that took it into 'queued' for this stay and the last "not before" set during the stay (a
create's run_at, a requeue's retry_after, a reschedule's run_at); a start before that waited 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

Event = Mapping[str, Any]  # a row of vjm.job_events
ALL_EVENTS = "SELECT * FROM vjm.job_events ORDER BY job_id, version"


def not_before(event: Event) -> datetime | None:
    """The moment `event` holds its job back until, if it sets one."""
    data = event["data"]
    if event["type"] == "create":
        return datetime.fromisoformat(data["run_at"]) if data.get("run_at") else None
    if event["type"] == "requeue":
        return event["occurred_at"] + timedelta(seconds=data.get("retry_after") or 0)
    if event["type"] == "reschedule" and data.get("run_at"):
        return datetime.fromisoformat(data["run_at"])
    return None


def claimable_at(earlier: list[Event]) -> datetime:
    """When the job became claimable, from its events before a start (in version order)."""
    entry = max(i for i, e in enumerate(earlier) if e["from_state"] != "queued")
    held = [moment for e in earlier[entry:] if (moment := not_before(e)) is not None]
    return max([earlier[entry]["occurred_at"], *held[-1:]])


def platform_of(earlier: list[Event]) -> str:
    """The platform the job had when it was claimed: the newest create or update_metadata that names one."""
    return [e["data"]["platform_target"] for e in earlier
            if e["type"] in ("create", "update_metadata") and e["data"].get("platform_target")][-1]


def waits(events: Iterable[Event], since: datetime | None = None,
          keep: Callable[[Event], bool] = lambda e: True) -> list[tuple[str, float]]:
    """(platform, seconds waited) of every start at or after `since` that `keep` accepts."""
    streams: dict[Any, list[Event]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e["job_id"], e["version"])):
        streams[event["job_id"]].append(event)
    found = []
    for stream in streams.values():
        for i, start in enumerate(stream):
            if start["type"] == "start" and (since is None or start["occurred_at"] >= since) and keep(start):
                waited = (start["occurred_at"] - claimable_at(stream[:i])).total_seconds()
                found.append((platform_of(stream[:i]), max(waited, 0.0)))
    return found


def percentile_cont(values: list[float], fraction: float) -> float:
    """The interpolated percentile, as PostgreSQL's percentile_cont defines it."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency(found: Iterable[tuple[str, float]]) -> dict[str, tuple[int, float, float, float]]:
    """platform -> (claims, p50, p95, max) of the waits."""
    by_platform: dict[str, list[float]] = defaultdict(list)
    for platform, seconds in found:
        by_platform[platform].append(seconds)
    return {platform: (len(s), percentile_cont(s, 0.5), percentile_cont(s, 0.95), max(s))
            for platform, s in by_platform.items()}


def as_table(rows: Iterable[Any]) -> dict[str, tuple[int, float, float, float]]:
    """ClaimLatency rows (models or JSON objects) in the shape `latency` returns."""
    table = {}
    for row in rows:
        r = row if isinstance(row, Mapping) else row.model_dump()
        table[r["platform_target"]] = (r["claims"], r["p50_seconds"], r["p95_seconds"], r["max_seconds"])
    return table


def assert_same_latency(got: Mapping[str, tuple], expected: Mapping[str, tuple]) -> None:
    """Equal platforms and claims, and waits equal to the microsecond (float arithmetic aside)."""
    assert {p: r[0] for p, r in got.items()} == {p: r[0] for p, r in expected.items()}, (got, expected)
    for platform, row in expected.items():
        for name, a, b in zip(("p50", "p95", "max"), got[platform][1:], row[1:], strict=True):
            assert math.isclose(a, b, rel_tol=0, abs_tol=1e-6), (platform, name, a, b)
