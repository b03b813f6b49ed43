"""The failover drill: writers on the primary, the primary dies while its standby lags, the standby is promoted
(`pg_ctl promote`) and vjm is repointed at it; then an account of what was acknowledged and what survived.

The lag at the moment of the crash is made, not hoped for: the standby's WAL receiver is frozen
(SIGSTOP) while the writers go on, the primary is stopped in `immediate` mode (a crash: no shutdown
checkpoint, no last WAL sent), the receiver is thawed and the standby promoted. With
`synchronous_standby_names` naming the standby, no commit is acknowledged while the receiver is
frozen (the writers wait in SyncRep); without it, the writers' appends go on being acknowledged and
whatever the standby had not received is lost.

The writers walk jobs create -> start -> complete through a `VideoJobManager` that the drill swaps
underneath them (`Repointable`). A call that returned is an acknowledged append; one that raised
DatabaseUnavailable has an unknown outcome and its job is abandoned; so is a job the new primary does not
have (its create was lost) or has at another version.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from statemachine import ConcurrencyConflict, InvalidTransition, JobNotFound, StaleAttempt
from store import with_database
from store.projections import verify_projections
from tests.support.databases import create_migrated_database
from tests.support.factories import create_data
from tests.support.outage_writers import AMBIGUOUS
from tests.support.standby import STANDBY_NAME, StandbyPair
from videojobs import Settings, VideoJobManager, connect

Append = tuple[UUID, int, str]  # (job_id, version, type)
LOST_JOB = (JobNotFound, InvalidTransition, StaleAttempt, ConcurrencyConflict)


class Repointable:
    """Stands for a VideoJobManager; every call goes to `current`, which the drill swaps at the failover."""

    def __init__(self, manager: VideoJobManager) -> None:
        self.current = manager

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)


@dataclass
class Ledger:
    acknowledged: list[Append] = field(default_factory=list)
    ambiguous: int = 0  # calls that raised DatabaseUnavailable (or an untranslated driver error)
    abandoned: int = 0  # jobs given up after the failover: not there, or at another version


async def write_jobs(manager: Repointable, ledger: Ledger, seed: int, stop: asyncio.Event) -> None:
    """Walk jobs create -> start -> complete until `stop`; any failure abandons the job."""
    while not stop.is_set():
        try:
            job = await manager.create_job(user_id=f"writer{seed}", **create_data())
            ledger.acknowledged.append((job.job_id, job.version, "create"))
            attempt = await manager.start_processing(job.job_id, f"w{seed}")
            ledger.acknowledged.append((job.job_id, attempt.job.version, "start"))
            done = await manager.complete_job(job.job_id, [f"/out/{job.job_id}.mp4"], attempt=attempt.attempt)
            ledger.acknowledged.append((job.job_id, done.version, "complete"))
        except AMBIGUOUS:
            ledger.ambiguous += 1
            await asyncio.sleep(0.02)  # poll: the primary is down until the drill repoints; its deadlines bound this
        except LOST_JOB:
            ledger.abandoned += 1


@dataclass
class DrillReport:
    synchronous: bool
    acknowledged_before_crash: int
    lost: list[Append]                 # acknowledged appends the promoted server does not have
    lost_only_while_lagging: bool      # none of them was acknowledged before the standby stopped receiving
    lost_all_on_old_primary: bool      # every one of them is in the old primary's log: committed, never replicated
    survivors_all_on_old_primary: bool  # the promoted server's log (before new writes) is part of the old one's
    acknowledged_after: int
    ambiguous: int
    abandoned: int
    seconds_to_promote: float
    events: int                        # in the promoted server's log at the end
    checkpoint_events: int             # events its projector's checkpoint has applied
    feed_rows: int
    feed_max_seq: int
    checkpoint_change_seq: int
    verify_ok: bool
    verify_differences: list[str]


async def _log(url: str) -> dict[Append, bytes]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT job_id, version, type, hash FROM vjm.job_events")
    finally:
        await conn.close()
    return {(r["job_id"], r["version"], r["type"]): bytes(r["hash"]) for r in rows}


async def _until(check, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)  # poll: bounded by the deadline above


async def _stalled_in_syncrep(primary_url: str) -> bool:
    conn = await asyncpg.connect(primary_url)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"))
    finally:
        await conn.close()


async def run_drill(synchronous: bool, *, before: int = 300, during: int = 150, after: int = 150,
                    writers: int = 4, freeze: bool = True) -> DrillReport:
    """One drill on a new pair (removed afterwards). `freeze=False`: crash the primary under load with the standby
    streaming as it does (no receiver frozen; `during` is then unused)."""
    settings = {"fsync": "off"} | ({"synchronous_standby_names": STANDBY_NAME} if synchronous else {})
    pair = StandbyPair.make(**settings)
    try:
        pair.start()
        await pair.wait_streaming()
        return await _drill(pair, synchronous, before, during if freeze else None, after, writers)
    finally:
        pair.stop()


async def _drill(pair: StandbyPair, synchronous: bool, before: int, during: int | None, after: int,
                 writers: int) -> DrillReport:
    url = await create_migrated_database(pair.primary.url(), "vjm_drill")
    promoted_url = with_database(pair.standby.url(), "vjm_drill")
    ledger, stop = Ledger(), asyncio.Event()
    async with contextlib.AsyncExitStack() as new:
        old = contextlib.AsyncExitStack()
        manager = Repointable(await old.enter_async_context(_opened(url, writers)))
        tasks = [asyncio.create_task(write_jobs(manager, ledger, seed, stop)) for seed in range(writers)]
        try:
            frozen_at, crashed_at, seconds = await _crash_and_promote(pair, url, ledger, synchronous, before, during)
            acknowledged_at_crash = list(ledger.acknowledged)
            survivors = await _log(promoted_url)  # before anything is written there
            manager.current = await new.enter_async_context(_opened(promoted_url, writers))  # repointed
            await old.aclose()  # the old runtime: its projector and pools, on a dead server
            await _until(lambda: _more(ledger, crashed_at + after), 120, "writes on the promoted server")
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await old.aclose()
        assert await manager.current.maintenance.wait_for_projection(timeout=60)
        report = await _account(pair, promoted_url, url, survivors, acknowledged_at_crash, synchronous)
    lagging = set(acknowledged_at_crash[frozen_at:])
    return DrillReport(**report, lost_only_while_lagging=all(a in lagging for a in report["lost"]), acknowledged_before_crash=crashed_at, seconds_to_promote=seconds,
                       acknowledged_after=len(ledger.acknowledged) - crashed_at, ambiguous=ledger.ambiguous,
                       abandoned=ledger.abandoned)


def _opened(url: str, writers: int) -> contextlib.AbstractAsyncContextManager[VideoJobManager]:
    """A runtime with its projector and stuck detector, as an application process runs it."""
    return connect(settings=Settings(database_url=url, pool_size=writers + 2), listeners=True,
                   consistency_timeout=0.5)


async def _more(ledger: Ledger, count: int) -> bool:
    return len(ledger.acknowledged) >= count


async def _crash_and_promote(pair: StandbyPair, url: str, ledger: Ledger, synchronous: bool, before: int,
                             during: int | None) -> tuple[int, int, float]:
    """Freeze the standby's receiver under load (unless `during` is None), crash the primary, thaw the receiver,
    promote. (Appends acknowledged when the receiver froze, at the crash; seconds pg_ctl promote took.)"""
    await _until(lambda: _more(ledger, before), 120, f"{before} acknowledged appends")
    receiver = await pair.wal_receiver_pid()
    frozen_at = len(ledger.acknowledged)
    if during is not None:
        os.kill(receiver, signal.SIGSTOP)
    try:
        if during is None:
            pass
        elif synchronous:  # no commit can be acknowledged now: wait until the writers are held in SyncRep
            await _until(lambda: _stalled_in_syncrep(url), 60, "writers waiting for the synchronous standby")
        else:
            await _until(lambda: _more(ledger, frozen_at + during), 60, f"{during} appends while the standby lags")
        pair.stop_node(pair.primary, "immediate")
    finally:
        if during is not None:
            os.kill(receiver, signal.SIGCONT)
    crashed_at = len(ledger.acknowledged)
    started = time.monotonic()
    pair.promote()
    return frozen_at, crashed_at, time.monotonic() - started


async def _account(pair: StandbyPair, promoted_url: str, old_url: str, survivors: dict[Append, bytes],
                   acknowledged: list[Append], synchronous: bool) -> dict[str, Any]:
    """What the promoted server lost, checked against the old primary's log; its projection against its log."""
    verified = await verify_projections(promoted_url)
    conn = await asyncpg.connect(promoted_url)
    try:
        events = await conn.fetchval("SELECT count(*) FROM vjm.job_events")
        checkpoint = await conn.fetchrow("SELECT events, change_seq FROM vjm.projection_checkpoints "
                                         "WHERE name = 'main'")
        feed = await conn.fetchrow("SELECT count(*) AS n, coalesce(max(seq), 0) AS top FROM vjm.job_changes")
    finally:
        await conn.close()
    pair.start_node(pair.primary)  # the old primary after its crash, on its own now: what did it hold?
    old_log = await _log(old_url)
    pair.stop_node(pair.primary)
    lost = [a for a in acknowledged if a not in survivors]
    return dict(synchronous=synchronous, lost=lost, lost_all_on_old_primary=all(a in old_log for a in lost),
                survivors_all_on_old_primary=all(old_log.get(k) == h for k, h in survivors.items()),
                events=events, checkpoint_events=checkpoint["events"], feed_rows=feed["n"],
                feed_max_seq=feed["top"], checkpoint_change_seq=checkpoint["change_seq"], verify_ok=verified.ok,
                verify_differences=[str(d.model_dump(exclude={"live", "expected"})) for d in verified.differences[:5]])
