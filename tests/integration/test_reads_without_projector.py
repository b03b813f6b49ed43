"""A job that exists is never "not found": reads are true whether or not a projector runs.

The README's `listeners=False` means "run `vjm listen`"; until it runs, the projection
is behind. get_job_by_id folds the projected row (if any) and the events since, so it
answers at once and truly; it neither waits for a projector nor says the job is missing.
"""

from __future__ import annotations

import time

import pytest

from tests.support.factories import create_data
from videojobs import JobNotFound, Settings
from videojobs import connect as connect_manager

JOB = create_data(user_id="u1")
REPORTS = 3000
WAIT = 30.0  # the read-your-writes wait a lister would sit out; a true read needs none of it


async def test_a_job_with_thousands_of_events_and_no_projector_is_found_at_once(database_url: str, pool) -> None:
    async with connect_manager(settings=Settings(database_url=database_url), listeners=False,
                               consistency_timeout=WAIT) as manager:
        job = await manager.create_job(**JOB)
        attempt = await manager.start_processing(job.job_id, "w-1")
        await pool.execute(f"DO $$ BEGIN FOR i IN 1 .. {REPORTS} LOOP PERFORM vjm.append_event("
                           f"'{job.job_id}', 'progress', jsonb_build_object('percent', i % 100), 'w-1', NULL, "
                           f"{attempt.attempt}); END LOOP; END $$")
        await manager.report_progress(job.job_id, attempt.attempt, 42.0)
        assert await pool.fetchval("SELECT count(*) FROM vjm.jobs WHERE job_id = $1", job.job_id) == 0  # unprojected
        started = time.monotonic()
        found = await manager.get_job_by_id(job.job_id)
        elapsed = time.monotonic() - started
        with pytest.raises(JobNotFound):
            await manager.get_job_by_id("00000000-0000-4000-8000-000000000000")
    assert found.job_id == job.job_id and found.status == "processing" and found.progress_percent == 42.0
    assert found.version == REPORTS + 3
    assert elapsed < WAIT, "it waited for a projector instead of reading the log"
