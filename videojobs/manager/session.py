"""What every manager service shares: the runtime (pools, watcher, tokens), who is calling, and the
write primitives (append one, append and fold, append many) with read-your-writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import asyncpg
import structlog

from listeners import ProjectionWatcher, ReplicaReads
from statemachine import WORKER_REPORTS, AccessDenied, JobNotFound, VJMError
from store import Event, EventStore, NewEvent, translate_error
from store.events import prepare_event
from store.identity import AUTHENTICATED, acting_as
from store.job_writes import JobHistory, append_events, append_events_only, append_returning_job
from store.projections.fold import apply_stream
from store.tokens import TokenSource, end_user_token
from store.write_combiner import WriteCombiner

from ..models import BulkResult, Job
from .write_tracker import WriteTracker

log = structlog.get_logger("vjm.manager")

DEFAULT_SERVICE = "vjm"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a manager acts as: a trusted service (no user), or one end user under RLS.

    `service` is the principal a trusted manager records as the actor when a call names
    none (VJM_SERVICE_NAME, `as_service(name)`); a worker's report on its own attempt
    records that worker instead (the database knows who started the attempt).
    """

    user_id: str | None = None
    role: str | None = None  # None: the pool's own session role
    token: str | None = field(default=None, repr=False)  # the user's own signed token (HTTP), else minted
    service: str = DEFAULT_SERVICE

    @property
    def is_user(self) -> bool:
        return self.user_id is not None


class InProcessListeners(Protocol):
    """The background services connect() runs in this process (videojobs.connect.Listeners)."""

    @property
    def detector_running(self) -> bool: ...

    @property
    def projector_leader(self) -> bool: ...

    @property
    def projector_backend_pid(self) -> int | None: ...


@dataclass(frozen=True, eq=False)
class Runtime:
    """What connect() opens once and every scoped manager shares; not part of the public API."""

    service_pool: asyncpg.Pool  # the trusted service's connections (a session role, e.g. vjm_admin)
    user_pool: asyncpg.Pool     # end users' connections: every request runs in acting_as()
    database_url: str           # the direct URL: dedicated connections (listeners, feed, rebuild), never a pooler
    watcher: ProjectionWatcher | None = None
    tokens: TokenSource | None = None  # mints end users' tokens for as_user() (None: store.identity's default)
    consistency_timeout: float = 2.0
    listeners: InProcessListeners | None = None
    writes: WriteTracker = field(default_factory=WriteTracker)
    combiner: WriteCombiner | None = None  # the trusted service's appends, combined (store.write_combiner)
    user_combiner: WriteCombiner | None = None  # end users' creates, combined per token, on the user pool
    replica: ReplicaReads | None = None  # a streaming standby for reads (VJM_READ_DATABASE_URL; reads.py)


@dataclass(frozen=True, eq=False)
class Session:
    """One caller on the shared runtime: the primitives the services are written with."""

    runtime: Runtime
    caller: Caller = Caller()

    def connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection acting as the caller: plain for a service, a scoped transaction for a user.

        Failing to get one (server down, refusing connections) is DatabaseUnavailable; driver
        errors inside the block become vjm errors.
        """
        return _noting_use(self.runtime.writes, self.caller_connection(self.runtime.service_pool,
                                                                       self.runtime.user_pool))

    def caller_connection(self, service_pool: asyncpg.Pool,
                          user_pool: asyncpg.Pool) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """As connection(), on the given pools (the primary's, or a standby's: reads.py)."""
        if not self.caller.is_user:
            return translated_opening(service_pool.acquire())
        return translated_opening(acting_as(user_pool, role=self.caller.role or AUTHENTICATED,
                                            user_id=self.caller.user_id, token=self.caller.token,
                                            tokens=self.runtime.tokens))

    def service_connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A trusted service connection whoever the caller (checkpoints, leases, the audit tree)."""
        return _noting_use(self.runtime.writes, translated_opening(self.runtime.service_pool.acquire()))

    async def append(self, trigger: str, data: dict[str, Any] | None, **ids: Any) -> Event:
        """Validate and append one transition as the caller; remembers its position."""
        event = prepare_event(trigger, data, actor=ids.pop("actor", None) or self.actor(trigger), **ids)
        if self.runtime.combiner is not None and not self.caller.is_user:
            stored = await translated_call(self.runtime.combiner.append(event))
        else:
            async with self.connection() as conn:
                stored = await EventStore(conn).append(event)
        self.remember(stored.cursor)
        return stored

    async def append_job(self, trigger: str, data: dict[str, Any] | None, *, lock_timeout: float | None = None,
                         **ids: Any) -> tuple[Event, Job]:
        """As append, and the job as it is after the event, in the same round trip.

        The job is folded from its projected row and the events since (store.job_writes),
        never replayed from its whole history. A create waits at most `lock_timeout` seconds
        for another request with its idempotency key, when given (EventStore.append).
        """
        event = prepare_event(trigger, data, actor=ids.pop("actor", None) or self.actor(trigger), **ids)
        combiner = self.runtime.combiner if not self.caller.is_user and lock_timeout is None else None
        if combiner is not None:  # a trusted write: combined with the others in flight
            history = await translated_call(_combined(combiner, event))
            self.remember(history.event.cursor)
            return history.event, fold_job(history)
        if event.trigger == "create":
            stored = await self._append_create(event, lock_timeout)
            history = JobHistory(stored, None, [stored])
        else:
            async with self.connection() as conn:
                history = await append_returning_job(conn, event)
        self.remember(history.event.cursor)
        return history.event, fold_job(history)

    async def _append_create(self, event: NewEvent, lock_timeout: float | None) -> Event:
        """A create: an end user's in one round trip, the identity set in the same statement as the append
        (EventStore.append_as_user), not BEGIN, set_config, append, COMMIT, and combined with the user's other
        creates in flight when the runtime combines writes; a trusted caller's as before."""
        caller = self.caller
        if caller.is_user and (caller.role or AUTHENTICATED) == AUTHENTICATED:
            token = await end_user_token(caller.user_id, caller.token, self.runtime.tokens)
            combiner = self.runtime.user_combiner if lock_timeout is None else None
            return await translated_call(
                combiner.append(event, token=token) if combiner is not None  # with the user's others in flight
                else EventStore(self.runtime.user_pool).append_as_user(event, token=token, lock_timeout=lock_timeout))
        async with self.connection() as conn:
            return await EventStore(conn).append(event, lock_timeout=lock_timeout)

    async def append_each(self, events: list[NewEvent], job_ids: list[Any], *,
                          with_jobs: bool = True) -> list[BulkResult]:
        """Many transitions, each judged on its own (vjm.append_events); a result per event, under its job id,
        with the job as the event left it unless `with_jobs` is false (one read less per call)."""
        async with self.connection() as conn:
            outcomes = await (append_events(conn, events) if with_jobs else append_events_only(conn, events))
        results = []
        for job_id, outcome in zip(job_ids, outcomes, strict=True):
            if isinstance(outcome, VJMError):
                results.append(refused(job_id, outcome))
                continue
            event = outcome.event if isinstance(outcome, JobHistory) else outcome
            self.remember(event.cursor)
            job = fold_job(outcome) if isinstance(outcome, JobHistory) and event.type != "delete" else None
            results.append(BulkResult(job_id=str(job_id), ok=True, job=job))
        return results

    def own_scope(self, user_id: str) -> None:
        """One rule for every adapter: an end user lists and counts their own user scope only.

        (Their teams' jobs come through get_team_jobs and list_jobs; a total always counts what
        the rows are drawn from.)
        """
        if self.caller.is_user and user_id != self.caller.user_id:
            raise AccessDenied("end users list their own jobs only")

    def actor(self, trigger: str) -> str | None:
        """Who a call that names no actor records: the end user; else, for a worker's report on its
        own attempt, nobody here (the guard records the worker that started the attempt); else the
        service principal. Never the database login."""
        if self.caller.is_user:
            return self.caller.user_id
        return None if trigger in WORKER_REPORTS else self.caller.service

    def remember(self, cursor: tuple[int, int]) -> None:
        """Note a position written by this caller: the next read waits until the projection has it."""
        self.runtime.writes.remember(cursor)

    async def read_your_writes(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - bounded, then reads
        """Wait (at most `timeout`, default consistency_timeout) until the projection has applied the last
        write made through this runtime."""
        cursor, watcher = self.runtime.writes.cursor, self.runtime.watcher
        if cursor is None or watcher is None:
            return
        timeout = self.runtime.consistency_timeout if timeout is None else timeout
        if not await watcher.wait_for(cursor, timeout):
            log.warning("read_your_writes_timeout", cursor=cursor, timeout=timeout)


@contextlib.asynccontextmanager
async def translated_opening(opening: Any) -> AsyncIterator[asyncpg.Connection]:
    """Enter `opening`; driver errors while entering it or inside the block become vjm errors."""
    try:
        conn = await opening.__aenter__()
    except Exception as exc:
        raise translate_error(exc) from exc
    try:
        yield conn
    except BaseException as exc:
        await _exit_translated(opening, exc)
    else:
        try:
            await opening.__aexit__(None, None, None)  # e.g. the COMMIT of a user's transaction
        except Exception as exc:
            raise translate_error(exc) from exc


@contextlib.asynccontextmanager
async def _noting_use(writes: WriteTracker, opening: Any) -> AsyncIterator[asyncpg.Connection]:
    """`opening`, and the primary noted as used once it is given back (after its COMMIT): reads.py."""
    try:
        async with opening as conn:
            yield conn
    finally:
        writes.touch()


async def _exit_translated(opening: Any, exc: BaseException) -> None:
    """Leave `opening` after `exc`, and raise `exc` as a vjm error (unless the context suppressed it)."""
    try:
        suppressed = await opening.__aexit__(type(exc), exc, exc.__traceback__)
    except Exception as exit_exc:  # e.g. releasing a connection the server just dropped
        raise translate_error(exit_exc) from exc
    if suppressed:
        return
    translated = translate_error(exc) if isinstance(exc, Exception) else exc
    if translated is exc:
        raise exc
    raise translated from exc


async def translated_call(operation: Awaitable[T]) -> T:
    """Await `operation`; driver errors (e.g. the server going away) become vjm errors."""
    try:
        return await operation
    except Exception as exc:
        translated = translate_error(exc)
        if translated is exc:
            raise
        raise translated from exc


def fold_job(history: JobHistory) -> Job:
    """A job as it is after a write: its row before, with the events since applied (the projector's fold)."""
    return fold_to_job(history.event.job_id, history.base, history.since)


def fold_to_job(job_id: Any, base: dict[str, Any] | None, events: list[Event]) -> Job:
    """A job's row (or nothing) with its events applied, honouring the voids among them; JobNotFound if none."""
    row = apply_stream(dict(base) if base is not None else None, events)
    if row is None:
        raise JobNotFound(job_id)
    return Job.model_validate(row)


def refused(job_id: Any, error: VJMError) -> BulkResult:
    """A bulk item that was not applied."""
    return BulkResult(job_id=str(job_id), ok=False, error=str(error), error_type=type(error).__name__)


async def _combined(combiner: WriteCombiner, event: NewEvent) -> JobHistory:
    """`event` through the write combiner, as the job's history up to it."""
    if event.trigger == "create":
        stored = await combiner.append(event)
        return JobHistory(stored, None, [stored])
    return await combiner.append_returning_job(event)
