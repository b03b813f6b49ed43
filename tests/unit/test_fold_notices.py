"""vjm_jobs payloads: ids and states only, small, one per job or one summary per burst."""

from __future__ import annotations

import json
import uuid

import pytest

from listeners import BatchNotice, JobNotice, ProjectorConfig, parse_notice
from listeners.notifications import build_notices
from store.projections import JobChange


def _changes(count: int) -> list[JobChange]:
    return [JobChange(seq=i + 1, xact_id=1000 + i, position=5000 + i, job_id=uuid.uuid4(), user_id="u" * 128,
                      team_id=uuid.uuid4(), status="processing", version=3) for i in range(count)]


def test_few_jobs_get_one_notice_each() -> None:
    payloads = build_notices(_changes(3), (1002, 5002), events=7, per_job_limit=10)
    notices = [parse_notice(p) for p in payloads]
    assert all(isinstance(n, JobNotice) for n in notices) and len(notices) == 3
    assert {"position", "job_id", "status", "user_id", "team_id", "cursor"} <= set(json.loads(payloads[0]))
    assert all(len(p.encode()) < 8000 for p in payloads)


def test_a_burst_gets_one_summary() -> None:
    payloads = build_notices(_changes(500), (1499, 5499), events=900, per_job_limit=10)
    assert len(payloads) == 1 and len(payloads[0]) < 8000
    notice = parse_notice(payloads[0])
    assert isinstance(notice, BatchNotice)
    assert (notice.seq_from, notice.seq_to, notice.jobs, notice.events, notice.cursor) == (1, 500, 500, 900,
                                                                                           (1499, 5499))


def test_nothing_changed_sends_nothing_and_junk_is_ignored() -> None:
    assert build_notices([], (1, 1), events=0, per_job_limit=10) == []
    assert parse_notice("not json") is None and parse_notice('{"type": "other"}') is None


def test_projector_config_is_validated() -> None:
    assert ProjectorConfig(database_url="postgresql://x").poll_interval == 1.0
    with pytest.raises(ValueError):
        ProjectorConfig(database_url="postgresql://x", batch_size=0)
    with pytest.raises(ValueError):
        ProjectorConfig(database_url="postgresql://x", notify_per_job_limit=51)
