"""The subscriptions service: one subscription for a single reader, or one shared reader for many streams."""

from __future__ import annotations

from listeners import ChangeFeedHub, FeedHubConfig, FeedSubscription, JobChangeSubscription, subscribe_job_changes
from listeners.feed_hub import OVERFLOW
from store.projections import get_checkpoint

from .health import PROJECTOR
from .session import Session

__all__ = ["Subscriptions", "ChangeFeedHub", "FeedSubscription", "JobChangeSubscription", "OVERFLOW"]


class Subscriptions:
    """subscribe, open_hub, position."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def subscribe(self, *, after: int = 0, poll_interval: float = 1.0) -> JobChangeSubscription:
        """Every change this caller may see after change-feed number `after`, then live ones, in commit
        order, once each: `async for change in sub` (an end user's under Row Level Security); `close()` it."""
        return subscribe_job_changes(self._session.runtime.database_url, after=after,
                                     user_id=self._session.caller.user_id, poll_interval=poll_interval)

    async def open_hub(self, *, page_size: int = 500, queue_size: int = 1000, poll_interval: float = 1.0,
                       database_url: str | None = None) -> ChangeFeedHub:
        """One reader of the change feed shared by any number of subscribers (an HTTP app's event
        streams), started; `hub.subscribe(after=, user_id=)` per stream, `hub.close()` at the end.
        A trusted manager's: the hub reads every row and hands each subscriber what it may see.
        With a standby (VJM_READ_DATABASE_URL) the hub reads the feed there; it LISTENs on the primary."""
        runtime = self._session.runtime
        config = FeedHubConfig(database_url=database_url or runtime.database_url, page_size=page_size,
                               queue_size=queue_size, poll_interval=poll_interval)
        pools = runtime.replica or runtime
        hub = ChangeFeedHub(config, service_pool=pools.service_pool, user_pool=pools.user_pool,
                            standby=runtime.replica is not None)
        await hub.start()
        return hub

    async def position(self) -> int:
        """The newest change-feed sequence number: subscribe after it to see only changes from now on."""
        async with self._session.service_connection() as conn:  # the checkpoint is readable by service roles only
            checkpoint = await get_checkpoint(conn, PROJECTOR)
        return checkpoint.change_seq if checkpoint else 0
