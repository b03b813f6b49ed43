"""The shared core of VideoJobManager: who is calling, how to reach the database, read-your-writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from listeners import ProjectionWatcher
from listeners.fold import apply_stream
from statemachine import WORKER_REPORTS, AccessDenied, JobNotFound, VJMError
from store import Event, EventStore, NewEvent, translate_error
from store.events import prepare_event
from store.identity import AUTHENTICATED, TokenSource, acting_as
from store.job_writes import JobHistory, append_events, append_returning_job

from ..models import BulkResult, Job

log = structlog.get_logger("vjm.manager")


DEFAULT_SERVICE = "vjm"


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


class WriteTracker:
    """The newest commit-order cursor written through a manager and everything derived from it (as_user)."""

    def __init__(self) -> None:
        self.cursor: tuple[int, int] | None = None

    def remember(self, cursor: tuple[int, int]) -> None:
        if self.cursor is None or cursor > self.cursor:
            self.cursor = cursor


class ManagerCore:
    """State shared by every part of the manager, and the two primitives they use."""

    def __init__(self, pool: asyncpg.Pool, *, database_url: str, user_pool: asyncpg.Pool | None = None,
                 caller: Caller = Caller(), watcher: ProjectionWatcher | None = None,
                 consistency_timeout: float = 2.0, writes: WriteTracker | None = None,
                 tokens: TokenSource | None = None):
        self._pool = pool  # the trusted service's pool (a session role, e.g. vjm_admin)
        self._user_pool = user_pool or pool  # end users' pool: every request runs in acting_as()
        self._url = database_url
        self._caller = caller
        self._watcher = watcher
        self._consistency_timeout = consistency_timeout
        self._writes = writes or WriteTracker()
        self._tokens = tokens  # mints end users' tokens for as_user() (None: store.identity's default)

    @property
    def database_url(self) -> str:
        """The URL of the database this manager works on."""
        return self._url

    @property
    def pool(self) -> asyncpg.Pool:
        """The trusted service's pool (its connections act as a service role)."""
        return self._pool

    @property
    def user_pool(self) -> asyncpg.Pool:
        """The pool end-user requests run on, each inside acting_as()."""
        return self._user_pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection acting as the caller: plain for the service, a scoped transaction for a user.

        Failing to get one (server down, refusing connections) is DatabaseUnavailable.
        """
        async with self._open_connection() as conn:
            yield conn

    def _open_connection(self):
        if not self._caller.is_user:
            return translated_opening(self._pool.acquire())
        return translated_opening(acting_as(self._user_pool, role=self._caller.role or AUTHENTICATED,
                                     user_id=self._caller.user_id, token=self._caller.token, tokens=self._tokens))

    async def _append(self, trigger: str, data: dict[str, Any] | None, **ids: Any) -> Event:
        """Validate and append one transition as the caller; remembers its position."""
        event = prepare_event(trigger, data, actor=ids.pop("actor", None) or self._actor(trigger), **ids)
        async with self._connection() as conn:
            stored = await EventStore(conn).append(event)
        self._remember(stored)
        return stored

    async def _append_job(self, trigger: str, data: dict[str, Any] | None, **ids: Any) -> tuple[Event, Job]:
        """As _append, and the job as it is after the event, in the same round trip.

        The job is folded from its projected row and the events since (store.job_writes),
        never replayed from its whole history.
        """
        event = prepare_event(trigger, data, actor=ids.pop("actor", None) or self._actor(trigger), **ids)
        async with self._connection() as conn:
            if event.trigger == "create":
                stored = await EventStore(conn).append(event)
                history = JobHistory(stored, None, [stored])
            else:
                history = await append_returning_job(conn, event)
        self._remember(history.event)
        return history.event, fold_job(history)

    async def _append_each(self, events: list[NewEvent], job_ids: list[Any]) -> list[BulkResult]:
        """Many transitions, each judged on its own (vjm.append_events); a result per event, under its job id."""
        async with self._connection() as conn:
            outcomes = await append_events(conn, events)
        results = []
        for job_id, outcome in zip(job_ids, outcomes, strict=True):
            if isinstance(outcome, VJMError):
                results.append(refused(job_id, outcome))
                continue
            self._remember(outcome.event)
            results.append(BulkResult(job_id=str(job_id), ok=True,
                                      job=fold_job(outcome) if outcome.event.type != "delete" else None))
        return results

    def _own_scope(self, user_id: str) -> None:
        """One rule for every adapter: an end user lists and counts their own user scope only.

        (Their teams' jobs come through get_team_jobs and list_jobs; a total always counts what
        the rows are drawn from.)
        """
        if self._caller.is_user and user_id != self._caller.user_id:
            raise AccessDenied("end users list their own jobs only")

    def _actor(self, trigger: str) -> str | None:
        """Who a call that names no actor records: the end user; else, for a worker's report on its
        own attempt, nobody here (the guard records the worker that started the attempt); else this
        manager's service principal. Never the database login."""
        if self._caller.is_user:
            return self._caller.user_id
        return None if trigger in WORKER_REPORTS else self._caller.service

    def _remember(self, event: Event) -> None:
        self._remember_cursor(event.cursor)

    def _remember_cursor(self, cursor: tuple[int, int]) -> None:
        self._writes.remember(cursor)

    async def _read_your_writes(self) -> None:
        """Wait (bounded) until the projection has applied this manager's last write."""
        cursor = self._writes.cursor
        if cursor is None or self._watcher is None:
            return
        if not await self._watcher.wait_for(cursor, self._consistency_timeout):
            log.warning("read_your_writes_timeout", cursor=cursor, timeout=self._consistency_timeout)


@contextlib.asynccontextmanager
async def translated_opening(opening) -> AsyncIterator[asyncpg.Connection]:
    """Enter `opening`; driver errors while entering it or inside the block become vjm errors."""
    try:
        conn = await opening.__aenter__()
    except Exception as exc:
        raise translate_error(exc) from exc
    try:
        yield conn
    except BaseException as exc:
        try:
            suppressed = await opening.__aexit__(type(exc), exc, exc.__traceback__)
        except Exception as exit_exc:  # e.g. releasing a connection the server just dropped
            raise translate_error(exit_exc) from exc
        if not suppressed:
            translated = translate_error(exc) if isinstance(exc, Exception) else exc
            if translated is exc:
                raise
            raise translated from exc
    else:
        try:
            await opening.__aexit__(None, None, None)  # e.g. the COMMIT of a user's transaction
        except Exception as exc:
            raise translate_error(exc) from exc


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
    """The result of a bulk item that was not applied."""
    return BulkResult(job_id=str(job_id), ok=False, error=str(error), error_type=type(error).__name__)
