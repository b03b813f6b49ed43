"""Write combining (group commit in the client): concurrent appends from one process, one statement and one commit.

Callers `await combiner.append(event)` as they would `EventStore(pool).append(event)`. The combiner gathers what
callers hand it while a round is in flight and sends it as one call of the batch path: transitions through
vjm.append_events (each item judged on its own: a refusal fails its caller only), creates through
vjm.append_create_batch (one INSERT). Each caller gets its own stored event, or its own typed error, and only after
the transaction that holds it has committed: the batch call is one autocommit statement.

- No added wait when the database is idle: a round starts at once (after one turn of the event loop, so that the
  callers scheduled in the same turn share it). Under load, what arrives while rounds are in flight waits for the
  next round: the batch grows with the load, at most `max_batch` items per round.
- At most `max_rounds` rounds run at once, each on a connection of the pool.
- A job appears once per round (the guard refuses a call that names it twice): a second item for it waits for the
  next round, so one job's items apply in the order given.
- A create batch is all or nothing; when it is refused, its items are sent again one by one, so that each caller
  gets the answer its own create deserves.
- Only what runs under the pool's role and identity is combined: one combiner per pool (a trusted service's or a
  processor's). End users' writes, which run in a transaction of their own under their identity, are not combined.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from statemachine import Trigger, VJMError

from .events import EventStore, NewCreates, NewEvent, created_events
from .job_writes import JobHistory, append_events, append_events_only
from .models import Event

DEFAULT_MAX_BATCH = 50  # vjm.append_events' items per call (store.job_writes.MAX_APPENDS_PER_CALL)


@dataclass(slots=True)
class _Pending:
    event: NewEvent
    with_job: bool = False  # the caller wants the job's history up to its event (append_returning_job)
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def kind(self) -> tuple[bool, bool]:
        """What a round holds one of: creates, transitions, or transitions answered with their job."""
        return self.event.trigger is Trigger.CREATE, self.with_job


class WriteCombiner:
    """Appends through `pool`, combined: `append(event)` -> the stored event, or raises its refusal."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = DEFAULT_MAX_BATCH, max_rounds: int = 2) -> None:
        if not 1 <= max_batch <= DEFAULT_MAX_BATCH or max_rounds < 1:
            raise ValueError(f"max_batch must be 1-{DEFAULT_MAX_BATCH} and max_rounds at least 1")
        self._pool, self._max_batch, self._max_rounds = pool, max_batch, max_rounds
        self._pending: deque[_Pending] = deque()
        self._rounds = 0
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to the running rounds
        self.rounds_run = 0      # how many rounds were sent (for tests and monitoring)
        self.items_sent = 0

    async def append(self, event: NewEvent) -> Event:
        """Append `event` together with whatever else is pending; its stored event once committed.

        A create with an idempotency key goes alone (it may wait for another request's key)."""
        if event.trigger is Trigger.CREATE and "idempotency_key" in event.data:
            return await EventStore(self._pool).append(event)
        return await self._enqueue(_Pending(event))

    async def append_returning_job(self, event: NewEvent) -> JobHistory:
        """A transition (not a create), combined as `append`; its job's history up to it
        (store.job_writes.append_returning_job's answer)."""
        if event.trigger is Trigger.CREATE:
            raise ValueError("append_returning_job takes transitions; a create's job is its event")
        return await self._enqueue(_Pending(event, with_job=True))

    async def _enqueue(self, item: _Pending) -> Any:
        self._pending.append(item)
        if self._rounds < self._max_rounds:
            self._rounds += 1
            task = asyncio.get_running_loop().create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await item.done

    async def _run(self) -> None:
        """Send rounds until nothing is pending."""
        try:
            await asyncio.sleep(0)  # one turn of the loop: callers scheduled with this one join its round
            while self._pending:
                await self._send(self._take())
        finally:
            self._rounds -= 1

    def _take(self) -> list[_Pending]:
        """Up to max_batch pending items, of one kind (`_Pending.kind`), each job at most once."""
        kind = self._pending[0].kind
        taken: list[_Pending] = []
        kept: deque[_Pending] = deque()
        jobs: set[object] = set()
        while self._pending and len(taken) < self._max_batch:
            item = self._pending.popleft()
            if item.kind != kind or (item.event.job_id is not None and item.event.job_id in jobs):
                kept.append(item)
                continue
            jobs.add(item.event.job_id)
            taken.append(item)
        self._pending.extendleft(reversed(kept))
        return taken

    async def _send(self, items: list[_Pending]) -> None:
        self.rounds_run += 1
        self.items_sent += len(items)
        try:
            if items[0].event.trigger is Trigger.CREATE:
                await self._send_creates(items)
            else:
                events = [i.event for i in items]
                outcomes: Sequence[object] = await (append_events(self._pool, events) if items[0].with_job
                                                    else append_events_only(self._pool, events))
                for item, outcome in zip(items, outcomes, strict=True):
                    _settle(item, outcome)
        except Exception as exc:  # the call itself failed (connection lost): every caller of the round hears it
            for item in items:
                if not item.done.done():
                    item.done.set_exception(exc)
        except BaseException:  # the round was cancelled (the loop is closing): its callers are too
            for item in items:
                item.done.cancel()
            raise

    async def _send_creates(self, items: list[_Pending]) -> None:
        store = EventStore(self._pool)
        if len(items) == 1:
            _settle(items[0], await _outcome(store.append(items[0].event)))
            return
        creates = NewCreates.of([i.event for i in items])
        try:
            batch = await store.append_create_batch(creates)
        except VJMError:  # one of them was refused: each again on its own, for its own answer
            for item in items:
                _settle(item, await _outcome(store.append(item.event)))
            return
        for item, event in zip(items, created_events(creates, batch), strict=True):
            _settle(item, event)


async def _outcome(append: Awaitable[Event]) -> Event | VJMError:
    try:
        return await append
    except VJMError as exc:
        return exc


def _settle(item: _Pending, outcome: object) -> None:
    if item.done.done():  # its caller went away (cancelled)
        return
    if isinstance(outcome, VJMError):
        item.done.set_exception(outcome)
    else:
        item.done.set_result(outcome)
