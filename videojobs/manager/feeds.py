"""Live changes: one subscription for a single reader, or one shared reader for many streams."""

from __future__ import annotations

from listeners import ChangeFeedHub, FeedHubConfig, FeedSubscription, JobChangeSubscription, subscribe_job_changes
from listeners.feed_hub import OVERFLOW

from .core import ManagerCore

__all__ = ["FeedsMixin", "ChangeFeedHub", "FeedSubscription", "JobChangeSubscription", "OVERFLOW"]


class FeedsMixin(ManagerCore):
    """subscribe_changes, open_change_feed."""

    def subscribe_changes(self, *, after: int = 0, poll_interval: float = 1.0) -> JobChangeSubscription:
        """Every change this caller may see after change-feed number `after`, then live ones, in commit
        order, once each: `async for change in sub` (an end user's under Row Level Security); `close()` it."""
        return subscribe_job_changes(self._url, after=after, user_id=self._caller.user_id,
                                     poll_interval=poll_interval)

    async def open_change_feed(self, *, page_size: int = 500, queue_size: int = 1000, poll_interval: float = 1.0,
                               database_url: str | None = None) -> ChangeFeedHub:
        """One reader of the change feed shared by any number of subscribers (an HTTP app's event
        streams), started; `hub.subscribe(after=, user_id=)` per stream, `hub.close()` at the end.
        A trusted manager's: the hub reads every row and hands each subscriber what it may see."""
        config = FeedHubConfig(database_url=database_url or self._url, page_size=page_size, queue_size=queue_size,
                               poll_interval=poll_interval)
        hub = ChangeFeedHub(config, service_pool=self._pool, user_pool=self._user_pool)
        await hub.start()
        return hub
