"""One change-feed reader per process, fanned out to many subscribers (e.g. SSE streams).

A JobChangeSubscription owns a LISTEN connection, so a hundred dashboards would hold a
hundred connections. A ChangeFeedHub holds one: woken by vjm_jobs (or its poll interval,
since NOTIFY can be lost) it reads each new page of vjm.job_changes once, as a service
role, and appends each subscriber's share of the page to that subscriber's bounded
in-memory buffer.

Who may see what is still the database's decision. For each end user subscribed at the
moment, the hub asks, acting as that user, which rows of the page are visible:
vjm.job_changes_visible evaluates the row-level security policy of vjm.job_changes with
the caller's own identity and current teams (it takes no user names, so no caller can ask
about anyone else), so a user removed from a team stops receiving its changes from the
next page on. Service
subscribers (user_id None) receive every row, as they would read them.

Joining and resuming after a seq: listeners/feed_subscription.py.

Slow subscribers never hold anyone up: a page that finds a subscriber's buffer already
holding `queue_size` changes ends that subscription (reason "overflow"); a buffer below
that takes the whole page, so it never exceeds queue_size + page_size. The hub drops it
at once and never waits for it; the subscriber still receives what its buffer holds,
in order, and then its iterator ends, so a client that reconnects from the last seq it
received (SSE Last-Event-ID) loses nothing.

The hub's connection is reopened with backoff when it is lost (ListeningConnection);
the hub then reads on from its position, so subscribers see a delay, never a gap.

On a standby (`standby=True`: the pools are a streaming standby's, VJM_READ_DATABASE_URL) every
page is read from the standby and only the LISTEN stays on the primary (a standby cannot
LISTEN). A notice can then arrive before the standby has replayed its change: while the hub
has heard of a seq it has not read, it reads again after 2 ms, doubling to 50 ms, rather than
after the poll interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import structlog

from store.application_name import FEED
from store.identity import AUTHENTICATED, PROCESSOR, acting_as, validate_role, validate_user_id
from store.projections import JobChange, fetch_change_visibility, fetch_changes, fetch_last_change_seq

from .feed_subscription import CLOSED, OVERFLOW, SHUTDOWN, FeedSubscription
from .listening import CONNECTION_ERRORS, ListeningConnection
from .notifications import CHANNEL, JobNotice, parse_notice
from .service import BackgroundService, backoff

log = structlog.get_logger("vjm.feed_hub")

__all__ = ["ChangeFeedHub", "FeedHubConfig", "FeedSubscription", "OVERFLOW", "CLOSED", "SHUTDOWN"]



@dataclass(frozen=True, slots=True)
class FeedHubConfig:
    """Settings of a ChangeFeedHub."""

    database_url: str
    role: str = PROCESSOR  # the hub's own connection reads every row of the feed as this service role
    page_size: int = 500
    queue_size: int = 1000  # a subscriber with this many changes buffered is ended by the next page (OVERFLOW)
    poll_interval: float = 1.0  # read even without a notification
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        validate_role(self.role)
        if self.page_size < 1 or self.queue_size < 1 or self.poll_interval <= 0 or self.max_backoff <= 0:
            raise ValueError("page_size and queue_size must be positive, intervals above zero")


class ChangeFeedHub(BackgroundService[int]):
    """Reads the change feed once and fans it out: `hub.subscribe(after=seq, user_id=...)`."""

    name = "feed_hub"
    cancel_on_stop = True  # a pass may be waiting for the database to come back: do not wait for it

    def __init__(self, config: FeedHubConfig, *, service_pool: asyncpg.Pool, user_pool: asyncpg.Pool,
                 standby: bool = False):
        super().__init__(interval=config.poll_interval, max_backoff=config.max_backoff)
        self.config = config
        self.position: int | None = None  # the last seq dispatched; None until the first connection
        self.overflows = 0
        self._service_pool, self._user_pool, self._standby = service_pool, user_pool, standby
        self._heard = 0  # the newest seq a notice named (on a standby: read again soon while behind it)
        self._behind = 0  # passes in a row that read the standby behind `_heard`
        self._listening = ListeningConnection(config.database_url, (CHANNEL,), role=config.role, name=FEED,
                                              max_backoff=config.max_backoff, on_notify=self._notified)
        self._open: set[FeedSubscription] = set()
        self._live: set[FeedSubscription] = set()
        self._ready = asyncio.Event()
        self._token: asyncio.Event | None = None  # armed before each pass: a ring during it is kept
        self._closed = False

    @property
    def subscribers(self) -> int:
        """Open subscriptions (catching up or live)."""
        return len(self._open)

    @property
    def live_subscribers(self) -> int:
        """Subscriptions fed by the hub (caught up)."""
        return len(self._live)

    @property
    def connected(self) -> bool:
        """True while the hub's own connection is open."""
        return self._listening.connection is not None

    @property
    def reconnects(self) -> int:
        """How often the hub's connection was reopened after the first."""
        return max(0, self._listening.reconnects - 1)

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    async def start(self) -> None:
        """Start the reader task (it connects in the background, with backoff)."""
        if not self._closed:
            await super().start()

    async def wait_ready(self) -> None:
        """Wait until the hub knows its position (its first connection), or is closed."""
        await self._ready.wait()

    def subscribe(self, *, after: int = 0, user_id: str | None = None) -> FeedSubscription:
        """Every change after seq `after` that `user_id` may see (None: a service, every change)."""
        subscription = FeedSubscription(self, after=after, user_id=validate_user_id(user_id))
        if self._closed:
            subscription._end(SHUTDOWN)
        else:
            self._open.add(subscription)
        return subscription

    async def close(self) -> None:
        """Stop reading, end every subscription (reason "shutdown") and close the connection."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        for subscription in list(self._open):
            self._end(subscription, SHUTDOWN)
        await self.stop()
        log.info("feed_hub_closed", position=self.position)

    async def release(self) -> None:
        await self._listening.close()

    def wake(self) -> None:
        self._listening.ring()

    def _notified(self, channel: str, payload: str) -> None:
        notice = parse_notice(payload)
        if notice is not None:
            self._heard = max(self._heard, notice.seq if isinstance(notice, JobNotice) else notice.seq_to)

    async def __aenter__(self) -> ChangeFeedHub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the reader ----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Read the next page after the hub's position and dispatch it; returns its size."""
        conn = await self._listening.ensure()
        reader = self._service_pool if self._standby else conn
        if self.position is None:
            self.position = await fetch_last_change_seq(reader)
            self._ready.set()
            log.info("feed_hub_started", position=self.position, standby=self._standby)
        page = await fetch_changes(reader, self.position, self.config.page_size)
        if page:
            visible = await self._visibility(reader, page)
            self._dispatch(page, visible)
        return len(page)

    def before_pass(self) -> None:
        self._token = self._listening.arm()

    async def idle(self, result: int) -> None:
        """A full page: straight on; else wait for a ring or the poll interval."""
        if result < self.config.page_size:
            behind = self._standby and self.position is not None and self.position < self._heard
            self._behind = self._behind + 1 if behind else 0
            wait = min(0.002 * 2 ** min(self._behind, 5), 0.05) if behind else self.config.poll_interval
            await self._listening.wait(self._token or self._listening.arm(), wait)

    async def _visibility(self, conn: asyncpg.Pool | asyncpg.Connection,
                          page: list[JobChange]) -> set[tuple[int, str]]:
        """(seq, user) pairs of this page that the live end users may see, as the database decides.

        Subscribers may join while the query runs: ask again for users not asked yet until
        none are left, so that the dispatch right after (no await) covers every live user.
        """
        seqs = [change.seq for change in page]
        visible: set[tuple[int, str]] = set()
        asked: set[str] = set()
        while viewers := sorted(_users(self._live) - asked):
            for viewer in viewers:  # the database answers only for the identity it is given
                async with acting_as(conn, role=AUTHENTICATED, user_id=viewer) as tx:
                    visible |= {(seq, viewer) for seq in await fetch_change_visibility(tx, seqs)}
            asked.update(viewers)
        return visible

    def _dispatch(self, page: list[JobChange], visible: set[tuple[int, str]]) -> None:
        """Append each live subscriber's share of the page; end those whose buffer would overflow."""
        for subscription in list(self._live):
            user = subscription.user_id
            share = page if user is None else [c for c in page if (c.seq, user) in visible]
            if share and not subscription._offer(share):
                self.overflows += 1
                log.warning("feed_subscriber_overflow", user_id=user, position=subscription.position,
                            buffered=subscription.buffered, queue_size=self.config.queue_size)
                self._end(subscription, OVERFLOW)
        self.position = page[-1].seq

    # -- for subscriptions -----------------------------------------------------------------------

    async def read_after(self, user_id: str | None, after: int) -> list[JobChange]:
        """One page of the feed after `after` as `user_id` sees it (RLS), on a pooled connection.

        Retried with backoff while the database is unreachable; [] once the hub is closed.
        """
        failures = 0
        while not self._closed:
            try:
                return await self._read_page(user_id, after)
            except CONNECTION_ERRORS as exc:
                failures += 1
                log.warning("feed_catch_up_retry", user_id=user_id, after=after, error=repr(exc)[:200])
                await asyncio.sleep(backoff(failures, self.config.max_backoff))
        return []

    async def _read_page(self, user_id: str | None, after: int) -> list[JobChange]:
        if user_id is None:
            return await fetch_changes(self._service_pool, after, self.config.page_size)
        async with acting_as(self._user_pool, role=AUTHENTICATED, user_id=user_id) as conn:
            return await fetch_changes(conn, after, self.config.page_size)

    def _join(self, subscription: FeedSubscription) -> bool:
        """Make a subscription live; True if it is already level with the hub. No await inside."""
        if subscription not in self._open:
            return True
        self._live.add(subscription)
        return self.position is not None and subscription.position >= self.position

    def _end(self, subscription: FeedSubscription, reason: str) -> None:
        self._open.discard(subscription)
        self._live.discard(subscription)
        subscription._end(reason)


def _users(subscriptions: Iterable[FeedSubscription]) -> set[str]:
    return {s.user_id for s in subscriptions if s.user_id is not None}
