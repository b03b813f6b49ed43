"""The projector's basic contract: rows, stats, feed, notifications, exactly-once."""

from __future__ import annotations

import asyncio
import json

from listeners import Projector
from store import EventStore, connect, prepare_event
from tests.factories import create_job
from tests.integration.conftest import assert_read_model_is_fold


async def test_lifecycle_is_projected(pool, store: EventStore, make_projector) -> None:
    projector: Projector = make_projector()
    job = await create_job(store)
    await store.append(prepare_event("start", {"worker_id": "w1"}, job_id=job.job_id))
    await store.append(prepare_event("progress", {"percent": 40, "clips_done": 2}, job_id=job.job_id, attempt=1))
    done = await store.append(prepare_event("complete", {"output_paths": ["/o/1.mp4"], "processing_time": 12.5},
                                            job_id=job.job_id, attempt=1))
    result = await projector.run_once()
    assert result.leader and result.events == 4 and result.cursor == done.cursor
    row = await pool.fetchrow("SELECT * FROM vjm.jobs WHERE job_id = $1", job.job_id)
    assert (row["status"], row["version"], row["worker_id"], row["output_paths"]) == ("completed", 4, "w1", ["/o/1.mp4"])
    assert (row["processing_time"], row["progress_percent"], row["clips_done"]) == (12.5, 100.0, 2)
    assert row["completed_at"] == done.occurred_at and row["last_position"] == done.position
    stats = await pool.fetchrow("SELECT * FROM vjm.job_stats WHERE scope = 'user' AND scope_id = 'user-123'")
    assert (stats["total_jobs"], stats["completed_jobs"], stats["average_processing_time"]) == (1, 1, 12.5)
    assert (await projector.run_once()).events == 0
    await assert_read_model_is_fold(projector.config.database_url)
