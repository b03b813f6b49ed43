"""Writers that keep driving jobs through a database outage, and the ledger of what they were told.

Every call that *returned* is an acknowledged append, recorded as (job_id, version, type). A call
that raised DatabaseUnavailable has an unknown outcome: the writer waits for the database, re-reads
the job's history and goes on from what is really there (tests/faults/test_server_restart.py, soak.py).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from statemachine import ConcurrencyConflict, DatabaseUnavailable, InvalidTransition
from tests.support.factories import create_data
from videojobs import VideoJobManager

# Driver errors that reach callers untranslated today (product bug, see tests/faults/test_outage_errors.py):
# the writers treat them like DatabaseUnavailable, count them, and anything else fails the test.
UNTRANSLATED = (asyncpg.InterfaceError, asyncpg.exceptions._base.InternalClientError,
                asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError)
AMBIGUOUS = (DatabaseUnavailable, *UNTRANSLATED)


@dataclass
class Ledger:
    """What the writers were told: acknowledged appends, ambiguous failures, unclear errors."""

    acknowledged: list[tuple[UUID, int, str]] = field(default_factory=list)
    ambiguous: int = 0              # DatabaseUnavailable: the append may or may not have committed
    unclear: list[BaseException] = field(default_factory=list)  # anything that is not a vjm error

    def failed(self, exc: BaseException) -> None:
        self.ambiguous += 1
        if not isinstance(exc, DatabaseUnavailable):
            self.unclear.append(exc)

    def ack(self, job_id: UUID, version: int, kind: str) -> None:
        self.acknowledged.append((job_id, version, kind))


async def _until_available(manager: VideoJobManager, job_id: UUID):
    """Poll the job's history until the database answers again; returns the history."""
    while True:
        try:
            return await manager.get_job_history(job_id)
        except AMBIGUOUS:
            await asyncio.sleep(0.05)  # poll: the server is down; the test's deadline bounds this


async def _step(manager: VideoJobManager, rng: random.Random, job_id: UUID, state: str, attempt: int):
    """One transition chosen from the job's state; returns (version, type) when acknowledged, None when done."""
    if state == "queued":
        started = await manager.start_processing(job_id, f"w{rng.randint(1, 4)}")
        return started.job.version, "start"
    if state == "processing":
        roll = rng.random()
        if roll < 0.5:
            job = await manager.report_progress(job_id, attempt, percent=rng.uniform(0, 99))
            return job.version, "progress"
        if roll < 0.9:
            job = await manager.complete_job(job_id, [f"/out/{job_id}.mp4"], attempt=attempt)
            return job.version, "complete"
        job = await manager.fail_job(job_id, "encoder crashed", attempt=attempt)
        return job.version, "fail"
    if state in ("failed", "cancelled"):
        job = await manager.retry_job(job_id)
        return job.version, "retry"
    return None


async def write_until_stopped(manager: VideoJobManager, ledger: Ledger, seed: int, stop: asyncio.Event) -> None:
    """Drive jobs through their lifecycle until told to stop; resync after every ambiguous failure."""
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            job = await manager.create_job(user_id=f"writer{seed}", **create_data())
        except AMBIGUOUS as exc:
            ledger.failed(exc)
            await asyncio.sleep(0.05)  # poll: the server is down
            continue
        ledger.ack(job.job_id, job.version, "create")
        state, attempt = job.status, job.attempt
        while not stop.is_set():
            try:
                done = await _step(manager, rng, job.job_id, state, attempt)
            except (InvalidTransition, ConcurrencyConflict):  # someone else moved the job (soak: users, detector)
                head = (await _until_available(manager, job.job_id))[-1]
                state, attempt = head.to_state.value, head.attempt
                continue
            except AMBIGUOUS as exc:
                ledger.failed(exc)
                head = (await _until_available(manager, job.job_id))[-1]
                state, attempt = head.to_state.value, head.attempt
                continue
            if done is None:
                break
            version, kind = done
            ledger.ack(job.job_id, version, kind)
            state = {"start": "processing", "progress": "processing", "complete": "completed",
                     "fail": "failed", "retry": "queued"}[kind]
            if state == "queued" and kind == "retry" and rng.random() < 0.5:
                break  # half of the retried jobs are left for the claimers of another day
            attempt += kind == "start"
