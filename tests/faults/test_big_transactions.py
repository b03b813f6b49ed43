"""Big transactions (issue 9, part 4): 10,000 events in one transaction, all projected, few notifications.

Two shapes: one bulk statement (`bulk_create_jobs` -> vjm.append_creates, 10,000
creates) and 10,000 individual appends (creates, starts, progress, completes)
inside one explicit transaction. The projector applies them in batches of
`batch_size`; a batch touching more than `notify_per_job_limit` jobs sends one
`batch` summary, so vjm_jobs notifications are bounded by the number of batches,
not the number of events.
"""

from __future__ import annotations

import json
import math

import pytest

from listeners import Projector, ProjectorConfig, parse_notice
from store import EventStore, connect, prepare_event
from store.projections import verify_projections
from tests.support.factories import create_data
from tests.support.fault_sizes import scaled
from tests.support.notifications import NotificationCounter
from tests.support.projections import log_and_checkpoint
from tests.support.waiting import eventually
from videojobs import Settings
from videojobs import connect as connect_manager

BATCH = 1000


async def _project_and_count(database_url: str, expected_events: int) -> tuple[int, list[str]]:
    """Project everything while counting vjm_jobs notifications; returns (notifications, payloads)."""
    projector = Projector(ProjectorConfig(database_url=database_url, batch_size=BATCH))
    async with NotificationCounter(database_url) as counter:
        result = await projector.run_once()
        assert result.events == expected_events
        await eventually(lambda: counter.count() >= result.notifications, 10, "every vjm_jobs notice arrived")
        payloads = list(counter.payloads["vjm_jobs"])
    await projector.stop()
    assert len(payloads) == result.notifications
    return result.notifications, payloads


def _check_notices(payloads: list[str], events: int) -> None:
    assert 1 <= len(payloads) <= math.ceil(events / BATCH), f"{len(payloads)} notifications for {events} events"
    assert all(len(p.encode()) < 8000 for p in payloads)
    notices = [parse_notice(p) for p in payloads]
    assert all(n is not None for n in notices), payloads[:2]
    assert sum(n.events for n in notices if n.type == "batch") + sum(1 for n in notices if n.type == "job") >= 1
    assert all("clip.mp4" not in p for p in payloads), "payloads carry ids and states only"


@pytest.mark.slow
async def test_ten_thousand_creates_in_one_statement(database_url: str) -> None:
    jobs = scaled(10_000)
    async with connect_manager(settings=Settings(database_url=database_url), listeners=False) as manager:
        created = []
        for start in range(0, jobs, 10_000):  # bulk_create_jobs takes at most 10,000 per call
            created += await manager.bulk_create_jobs([create_data(user_id=f"u{i % 7}")
                                                       for i in range(start, min(jobs, start + 10_000))])
        assert len(created) == jobs
        count, payloads = await _project_and_count(database_url, jobs)
        _check_notices(payloads, jobs)
        stats = await manager.get_job_stats()
        assert stats.total_jobs == stats.queued_jobs == jobs
    total, applied, _ = await log_and_checkpoint(database_url)
    assert total == applied == jobs
    verify = await verify_projections(database_url)
    assert verify.ok and verify.jobs == jobs, verify.differences[:3]


@pytest.mark.slow
async def test_ten_thousand_appends_in_one_explicit_transaction(database_url: str) -> None:
    events, per_job = scaled(10_000), 5  # create, start, progress, progress, complete
    conn = await connect(database_url)
    try:
        store = EventStore(conn)
        async with NotificationCounter(database_url, ("vjm_events",)) as doorbells:
            async with conn.transaction():
                for _ in range(events // per_job):
                    head = await store.append(prepare_event("create", create_data(), user_id="bulk"))
                    head = await store.append(prepare_event("start", {"worker_id": "w"}, job_id=head.job_id))
                    for percent in (30, 60):
                        await store.append(prepare_event("progress", {"percent": percent}, job_id=head.job_id,
                                                         attempt=head.attempt))
                    await store.append(prepare_event("complete", {"output_paths": ["/o.mp4"]}, job_id=head.job_id,
                                                     attempt=head.attempt))
            # The doorbell rings once per append (payloads differ), all delivered at commit.
            await eventually(lambda: doorbells.count("vjm_events") >= events, 30, "every vjm_events doorbell")
            positions = [json.loads(p)["position"] for p in doorbells.payloads["vjm_events"]]
            assert len(set(positions)) == len(positions) == events
    finally:
        await conn.close()
    count, payloads = await _project_and_count(database_url, events)
    _check_notices(payloads, events)
    total, applied, _ = await log_and_checkpoint(database_url)
    assert total == applied == events
    verify = await verify_projections(database_url)
    assert verify.ok and verify.events == events and verify.jobs == events // per_job, verify.differences[:3]
