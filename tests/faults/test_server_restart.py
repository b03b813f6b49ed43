"""Server restart (issue 9, part 2): stop the embedded PostgreSQL mid-workload and start it again.

The server is the test's own (tests/faults/conftest.py `own_server`), never the
session server or the machine's :5432. Writers go through the real
VideoJobManager; every call that *returned* is an acknowledged append, recorded
as (job_id, version, type). A call that raised DatabaseUnavailable has an unknown
outcome: the writer waits for the database, re-reads the job's history and goes on
from what is really there. At the end, every acknowledged append is in the log
exactly once, the log holds nothing beyond the acknowledged appends plus at most
one per ambiguous failure, the projector and a change-feed subscription caught up
on their own, and the read model is the fold of the log.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field

import asyncpg
import pytest

from listeners import Projector, ProjectorConfig, subscribe_job_changes
from store.projections import verify_projections
from tests.support.fault_sizes import scaled
from tests.support.outage_writers import UNTRANSLATED, Ledger, write_until_stopped
from tests.support.projections import log_and_checkpoint, wait_projected
from tests.support.waiting import eventually
from videojobs import Settings
from videojobs import connect as connect_manager


@dataclass
class Follower:
    """A dashboard following the change feed; resumes after its last seq if the iterator dies."""

    url: str
    seqs: list[int] = field(default_factory=list)
    crashes: list[BaseException] = field(default_factory=list)
    subscription: object = None

    async def follow(self) -> None:
        while True:
            after = self.seqs[-1] if self.seqs else 0
            self.subscription = subscribe_job_changes(self.url, after=after, poll_interval=0.2, max_backoff=0.5)
            try:
                async for change in self.subscription:
                    self.seqs.append(change.seq)
            except UNTRANSLATED as exc:  # the subscription should have reconnected by itself (product bug)
                self.crashes.append(exc)
            finally:
                await self.subscription.close()


async def _log(url: str) -> collections.Counter:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT job_id, version, type FROM vjm.job_events")
    finally:
        await conn.close()
    return collections.Counter((r["job_id"], r["version"], r["type"]) for r in rows)


@pytest.mark.slow
async def test_restart_loses_no_acknowledged_append(own_server, own_database: str) -> None:
    url, target, writers = own_database, scaled(2000), 4
    settings = Settings(database_url=url, pool_size=writers + 2)
    async with connect_manager(settings=settings, listeners=False, consistency_timeout=0.5) as manager:
        projector = Projector(ProjectorConfig(database_url=url, poll_interval=0.2, max_backoff=0.5))
        await projector.start()
        follower = Follower(url)
        reader = asyncio.create_task(follower.follow())
        ledger, stop = Ledger(), asyncio.Event()
        tasks = [asyncio.create_task(write_until_stopped(manager, ledger, seed, stop)) for seed in range(writers)]
        try:
            await eventually(lambda: len(ledger.acknowledged) >= target // 3, 120, "a third of the workload")
            acknowledged_before = len(ledger.acknowledged)
            async with own_server.down():
                await eventually(lambda: ledger.ambiguous >= writers, 30, "every writer saw the outage")
            await eventually(lambda: len(ledger.acknowledged) >= target, 180, "the whole workload")
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert own_server.stops == own_server.starts == 1
        for task in tasks:
            assert task.done() and task.exception() is None, task
        assert len(ledger.acknowledged) > acknowledged_before  # writers went on after the restart

        stored = await _log(url)
        acked = collections.Counter(ledger.acknowledged)
        assert max(acked.values()) == 1, "a writer was told twice about the same (job, version)"
        missing = [key for key in acked if stored[key] != 1]
        assert not missing, f"{len(missing)} acknowledged appends are not in the log exactly once: {missing[:3]}"
        unacknowledged = sum(stored.values()) - len(acked)
        assert 0 <= unacknowledged <= ledger.ambiguous, (unacknowledged, ledger.ambiguous)

        total = await wait_projected(url, within=60)
        _, applied, change_seq = await log_and_checkpoint(url)
        assert applied == total == sum(stored.values())
        await eventually(lambda: len(follower.seqs) >= change_seq, 30, "the subscription caught up")
        assert follower.seqs == list(range(1, change_seq + 1)), "the subscription skipped or repeated a change"
        result = await verify_projections(url)
        assert result.ok and result.events == total, result.differences[:3]
        history = await manager.audit.verify_history()
        assert history.ok and history.checked == total
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await projector.stop()
        print(f"restart: {len(acked)} acknowledged, {ledger.ambiguous} ambiguous, {unacknowledged} unacknowledged "
              f"in the log, {len(ledger.unclear)} untranslated errors {sorted({type(e).__name__ for e in ledger.unclear})}, "
              f"{len(follower.crashes)} subscription crashes")
