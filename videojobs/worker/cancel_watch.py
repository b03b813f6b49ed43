"""The change feed, as a worker hears it: one of its jobs moved on (cancellation reaches running work), or a
job became claimable (an idle worker wakes up at once instead of at its next poll)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from uuid import UUID

from listeners.listening import ListeningConnection
from listeners.notifications import CHANNEL, QUEUE_CHANNEL, BatchNotice, JobNotice, parse_notice
from listeners.service import BackgroundService
from store.identity import PROCESSOR


class CancelWatcher(BackgroundService[bool]):
    """LISTENs on the projector's `vjm_jobs` notices. A notice that one of this worker's running jobs is
    no longer processing (cancelled, timed out), or a burst summary that may hide one, makes the lease
    keeper renew every lease at once: its reply names the jobs lost, whose handlers are then cancelled.

    The notice is only a prompt: what counts is the renewal's answer, from the log (so a missed or
    late notice costs latency, never correctness: the periodic heartbeat still finds out). After
    every (re)connection the leases are checked too, for what happened while nobody listened.

    A notice that a job is queued (created, retried, released, timed out), or a burst, or a `vjm_queue`
    notice (claims resumed, a cap raised), wakes the claim loop (`on_claimable`): an idle worker claims at once, and still polls, so that it never
    depends on a notice alone (and so that a requeued job is claimed once its delay is over).
    """

    name = "worker_cancel_watch"

    def __init__(self, database_url: str, running: Callable[[], Collection[UUID]],
                 check_now: Callable[[], None], on_claimable: Callable[[], None] = lambda: None, *,
                 interval: float = 5.0) -> None:
        super().__init__(interval=interval, max_backoff=5.0)
        self._running, self._check_now, self._on_claimable = running, check_now, on_claimable
        self._listening = ListeningConnection(database_url, [CHANNEL, QUEUE_CHANNEL], on_notify=self._notified, role=PROCESSOR)

    async def run_once(self) -> bool:
        """(Re)connect if needed; True when this pass had to connect (and so checked the leases)."""
        connected = self._listening.connection is not None
        await self._listening.ensure()
        if not connected:
            self._check_now()
        return not connected

    async def idle(self, result: bool) -> None:
        """Until a notice or a lost connection, or `interval` seconds."""
        await self._listening.wait(self._listening.arm(), self.interval)

    def wake(self) -> None:
        self._listening.ring()

    async def release(self) -> None:
        await self._listening.close()

    def _notified(self, channel: str, payload: str) -> None:
        if channel == QUEUE_CHANNEL:  # claims resumed, or a cap raised: there may be work to claim
            self._on_claimable()
            return
        notice = parse_notice(payload)
        if isinstance(notice, BatchNotice) or (isinstance(notice, JobNotice) and notice.status == "queued"):
            self._on_claimable()
        if isinstance(notice, BatchNotice) or (
                isinstance(notice, JobNotice) and notice.status != "processing" and notice.job_id in self._running()):
            self._check_now()
