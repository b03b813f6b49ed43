"""Write combining (group commit in the client): concurrent appends from one process, one statement and one commit.

Callers `await combiner.append(event)` as they would `EventStore(pool).append(event)`. The combiner gathers what
callers hand it while a round is in flight and sends it as one statement of the batch path: transitions through
vjm.append_events (each item judged on its own: a refusal fails its caller only), creates through
vjm.append_create_batch (one INSERT), both in one statement when a round holds both (store.job_writes.append_mixed).
Each caller gets its own stored event, or its own typed error, and only after the transaction that holds it has
committed: the round is one autocommit statement.

- No added wait when the database is idle: a round starts at once (after one turn of the event loop, so that the
  callers scheduled in the same turn share it). Under load, what arrives while rounds are in flight waits for the
  next round: the batch grows with the load, at most `max_batch` items per round.
- At most `max_rounds` rounds run at once, each on a connection of the pool: what a round leaves pending (more
  than `max_batch`) goes out beside it, unless it names a job of that round. A round of one transition takes the
  one-item path.
- A job appears once per round (the guard refuses a call that names it twice): a second item for it waits for the
  next round, so one job's items apply in the order given.
- A create batch is all or nothing; when it is refused (nothing of the round was written), its creates are sent
  again one by one, so that each caller gets the answer its own create deserves, and its transitions again together.
  A round whose outcome is unknown (the connection was lost) is never sent again: its callers hear
  DatabaseUnavailable.
- Transitions answered with their job's history (append_returning_job) go in rounds of their own.
- Only what runs under one role and identity is combined: one combiner per pool (a trusted service's or a
  processor's), and on the end users' pool, creates under one signed token (`append(event, token=...)`: one user's
  concurrent uploads, through vjm_entry.append_create_batch, which takes the token in the same statement). Two users'
  creates never share a round, nor a transaction. End users' transitions are not combined.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from statemachine import DatabaseUnavailable, Trigger, VJMError

from .events import EventStore, NewCreates, NewEvent, created_events
from .job_writes import JobHistory, append_events, append_events_only, append_mixed, append_returning_job
from .models import Event

DEFAULT_MAX_BATCH = 50  # vjm.append_events' items per call (store.job_writes.MAX_APPENDS_PER_CALL)


@dataclass(slots=True)
class _Pending:
    event: NewEvent
    token: str | None = None  # an end user's signed token: their creates go in rounds of their own
    with_job: bool = False  # the caller wants the job's history up to its event (append_returning_job)
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def is_create(self) -> bool:
        return self.event.trigger is Trigger.CREATE


class WriteCombiner:
    """Appends through `pool`, combined: `append(event)` -> the stored event, or raises its refusal."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = DEFAULT_MAX_BATCH, max_rounds: int = 2) -> None:
        if not 1 <= max_batch <= DEFAULT_MAX_BATCH or max_rounds < 1:
            raise ValueError(f"max_batch must be 1-{DEFAULT_MAX_BATCH} and max_rounds at least 1")
        self._pool, self._max_batch, self._max_rounds = pool, max_batch, max_rounds
        self._pending: deque[_Pending] = deque()
        self._rounds = 0
        self._starting = 0  # rounds started that have not taken their items yet
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to the running rounds
        self.rounds_run = 0      # how many rounds were sent (for tests and monitoring)
        self.items_sent = 0

    async def append(self, event: NewEvent, *, token: str | None = None) -> Event:
        """Append `event` together with whatever else is pending; its stored event once committed.

        With `token` (an end user's signed token, on the end users' pool) `event` must be a create, combined only
        with creates under the same token. A create with an idempotency key goes alone (it may wait for another
        request's key)."""
        if token is not None and event.trigger is not Trigger.CREATE:
            raise ValueError("an end user's writes are combined for creates only")
        if event.trigger is Trigger.CREATE and "idempotency_key" in event.data:
            return await _append_one(EventStore(self._pool), event, token)
        return await self._enqueue(_Pending(event, token=token))

    async def append_returning_job(self, event: NewEvent) -> JobHistory:
        """A transition (not a create), combined as `append`; its job's history up to it
        (store.job_writes.append_returning_job's answer)."""
        if event.trigger is Trigger.CREATE:
            raise ValueError("append_returning_job takes transitions; a create's job is its event")
        return await self._enqueue(_Pending(event, with_job=True))

    async def _enqueue(self, item: _Pending) -> Any:
        self._pending.append(item)
        if not self._starting:  # else a round about to start takes it
            self._start_round()
        return await item.done

    def _start_round(self) -> None:
        if self._rounds < self._max_rounds:
            self._rounds += 1
            self._starting += 1
            task = asyncio.get_running_loop().create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        """Send rounds until nothing is pending."""
        try:
            try:
                await asyncio.sleep(0)  # one turn of the loop: callers scheduled with this one join its round
            finally:
                self._starting -= 1
            while self._pending:
                items = self._take()
                if self._pending and not _names_a_job_of(self._pending, items):
                    self._start_round()  # the rest goes out beside this round, on another connection
                await self._send(items)
        finally:
            self._rounds -= 1

    def _take(self) -> list[_Pending]:
        """Pending items, each job at most once: creates and transitions answered with their event, or transitions
        answered with their job (as the first pending item is), at most max_batch. (Not split into smaller
        shares to keep more rounds in flight: a round costs the database as much as three or four items,
        bench/README.md "W1 with write combining on a fast disk".)"""
        with_job, token = self._pending[0].with_job, self._pending[0].token
        taken: list[_Pending] = []
        kept: deque[_Pending] = deque()
        jobs: set[object] = set()
        while self._pending and len(taken) < self._max_batch:
            item = self._pending.popleft()
            job = item.event.job_id
            if item.with_job != with_job or item.token != token or (job is not None and job in jobs):
                kept.append(item)
                continue
            jobs.add(job)
            taken.append(item)
        self._pending.extendleft(reversed(kept))
        return taken

    async def _send(self, items: list[_Pending]) -> None:
        self.rounds_run += 1
        self.items_sent += len(items)
        creates = [i for i in items if i.is_create]
        transitions = [i for i in items if not i.is_create]
        try:
            if not transitions:
                await self._send_creates(creates)
            elif not creates:
                await self._send_transitions(transitions)
            else:
                await self._send_mixed(creates, transitions)
        except Exception as exc:  # the call itself failed (connection lost): every caller of the round hears it
            for item in items:
                if not item.done.done():
                    item.done.set_exception(exc)
        except BaseException:  # the round was cancelled (the loop is closing): its callers are too
            for item in items:
                item.done.cancel()
            raise

    async def _send_transitions(self, items: list[_Pending]) -> None:
        if len(items) == 1:  # alone: the one-item path, which costs the database less than a batch of one
            event = items[0].event
            _settle(items[0], await _outcome(append_returning_job(self._pool, event) if items[0].with_job
                                             else EventStore(self._pool).append(event)))
            return
        events = [i.event for i in items]
        outcomes: Sequence[object] = await (append_events(self._pool, events) if items[0].with_job
                                            else append_events_only(self._pool, events))
        for item, outcome in zip(items, outcomes, strict=True):
            _settle(item, outcome)

    async def _send_mixed(self, creates: list[_Pending], transitions: list[_Pending]) -> None:
        try:
            created, outcomes = await append_mixed(self._pool, NewCreates.of([i.event for i in creates]),
                                                   [i.event for i in transitions])
        except DatabaseUnavailable:  # the outcome is unknown: never sent again
            raise
        except VJMError:  # a create was refused and nothing was written: each create again on its own
            await self._send_creates(creates, together=False)
            await self._send_transitions(transitions)
            return
        for item, outcome in zip(creates + transitions, created + outcomes, strict=True):
            _settle(item, outcome)

    async def _send_creates(self, items: list[_Pending], *, together: bool = True) -> None:
        store, token = EventStore(self._pool), items[0].token
        if together and len(items) > 1:
            try:
                creates = NewCreates.of([i.event for i in items])
                batch = await store.append_create_batch(creates, token=token)
            except DatabaseUnavailable:  # the outcome is unknown: never sent again
                raise
            except VJMError:  # one of them was refused: each again on its own, for its own answer
                pass
            else:
                for item, event in zip(items, created_events(creates, batch), strict=True):
                    _settle(item, event)
                return
        for item in items:
            _settle(item, await _outcome(_append_one(store, item.event, token)))


def _names_a_job_of(pending: deque[_Pending], items: list[_Pending]) -> bool:
    jobs = {i.event.job_id for i in items if i.event.job_id is not None}
    return any(p.event.job_id in jobs for p in pending)


async def _outcome(append: Awaitable[Event | JobHistory]) -> Event | JobHistory | VJMError:
    try:
        return await append
    except VJMError as exc:
        return exc


def _append_one(store: EventStore, event: NewEvent, token: str | None) -> Awaitable[Event]:
    """One append on its own: as the pool's role, or as the end user whose token is `token`."""
    return store.append(event) if token is None else store.append_as_user(event, token=token)


def _settle(item: _Pending, outcome: object) -> None:
    if item.done.done():  # its caller went away (cancelled)
        return
    if isinstance(outcome, VJMError):
        item.done.set_exception(outcome)
    else:
        item.done.set_result(outcome)
