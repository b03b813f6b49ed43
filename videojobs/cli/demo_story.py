"""What the demo's workers do, as their handlers print it (stdout) and their runtime logs it (stderr),
and the hung worker's story: frozen with SIGSTOP, its job timed out and re-run elsewhere, then
thawed with SIGCONT to send its late complete, which attempt fencing refuses."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ..manager import VideoJobManager
from .demo_actors import CANCEL_AT_CLIP, Cast
from .demo_screen import DemoScreen
from .demo_workers import WorkerProcess
from .render import short_id

RESCUE_WITHIN = 60.0  # seconds for the frozen job to be timed out, re-run and completed


@dataclass
class Rescue:
    """The hung worker: the job it froze on, who finished that job, and the refusal of its late complete."""

    worker: WorkerProcess | None = None
    job_id: UUID | None = None
    attempt: int = 0
    frozen: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # the change feed: its job changed
    rescued_by: str | None = None
    rescued_attempt: int = 0
    outcome: str | None = None  # what the thawed worker's runtime made of its attempt (worker_job_ended)
    refusal: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Story:
    """Routes each worker line to the screen and to the scenario's stories."""

    cast: Cast
    screen: DemoScreen
    rescue: Rescue = field(default_factory=Rescue)
    exit_codes: dict[str, int] = field(default_factory=dict)  # each worker's, once the demo stopped it

    def on_line(self, worker: WorkerProcess, record: dict[str, Any]) -> None:
        """One line from a worker: a handler's step, or one of the runtime's log records."""
        if record.get("log"):
            return self._on_log(worker, record)
        job_id, event = UUID(record["job"]), record["event"]
        self.screen.phase_of(job_id, event, record)
        if event == "clip" and job_id == self.cast.cancellation.job_id and record["clip"] >= CANCEL_AT_CLIP:
            self.cast.cancellation.mid_encode.set()
        elif event == "cancelled":
            self._handler_stopped(worker, job_id, record)
        elif event == "failing":
            self.screen.note(f"{worker.spec.name} fails job {short_id(job_id)} at clip {record['clip']}: "
                             f"{record['error']} (the handler raised; the runtime records fail with the error)")
        elif event == "busy":
            self.screen.note(f"{worker.spec.name}: encoder busy on job {short_id(job_id)} (TransientError): "
                             f"the runtime re-queues it (requeue), claimable again after a backoff")
        elif event == "freezing":
            self._frozen(worker, job_id, record)
        elif event == "thawed":
            self.screen.note(f"{worker.spec.name} thawed (SIGCONT) in job {short_id(job_id)}: its handler returns "
                             f"its clips, and the runtime sends the complete of attempt {record['attempt']}")

    def on_change(self, job_id: UUID, status: str) -> None:
        """A job changed (the change feed): if it is the frozen one, the rescue reads its new events."""
        if job_id == self.rescue.job_id:
            self.rescue.changed.set()

    def _on_log(self, worker: WorkerProcess, record: dict[str, Any]) -> None:
        if record["event"] != "worker_job_ended":
            return
        self.screen.outcomes[worker.spec.name, record["outcome"]] += 1  # what the runtime made of each attempt
        rescue = self.rescue
        if worker is rescue.worker and record.get("job_id") == str(rescue.job_id):
            rescue.outcome, rescue.refusal = record["outcome"], record.get("detail")
            rescue.ended.set()

    def _handler_stopped(self, worker: WorkerProcess, job_id: UUID, record: dict[str, Any]) -> None:
        cancellation = self.cast.cancellation
        after = ""
        if job_id == cancellation.job_id and cancellation.cancelled_at is not None:
            cancellation.stop_line = {**record, "worker": worker.spec.name}
            cancellation.handler_stopped.set()
            after = f", {record['t'] - cancellation.cancelled_at:.2f}s after the cancel"
        self.screen.note(f"{worker.spec.name}'s handler stopped on job {short_id(job_id)} after "
                         f"{record['encoded']}/{record['clips']} clips (asyncio.CancelledError): removed "
                         f"{record['removed']}{after}")

    def _frozen(self, worker: WorkerProcess, job_id: UUID, record: dict[str, Any]) -> None:
        rescue = self.rescue
        rescue.worker, rescue.job_id, rescue.attempt = worker, job_id, record["attempt"]
        self.screen.frozen.add(worker.spec.name)
        rescue.frozen.set()
        self.screen.note(f"{worker.spec.name} (pid {record['pid']}) hangs: frozen with SIGSTOP mid-job on "
                         f"{short_id(job_id)} (attempt {record['attempt']}), its clips encoded, its complete "
                         f"not sent; its lease stops being renewed")


async def play_rescue(story: Story, manager: VideoJobManager) -> None:
    """Wait for the freeze; tell the time-out and the re-run as the log records them; once another worker
    has completed the job, thaw the frozen worker and wait for its runtime's verdict on its late complete."""
    rescue, screen = story.rescue, story.screen
    await asyncio.wait_for(rescue.frozen.wait(), timeout=RESCUE_WITHIN)
    assert rescue.worker is not None and rescue.job_id is not None
    async with asyncio.timeout(RESCUE_WITHIN):  # a lease, a scan, a claim and an encode away
        await _narrate_until_completed(story, manager)
    story.screen.frozen.discard(rescue.worker.spec.name)
    rescue.worker.thaw()
    await asyncio.wait_for(rescue.ended.wait(), timeout=RESCUE_WITHIN)
    verdict = "refused" if rescue.outcome == "refused" else f"NOT refused ({rescue.outcome})"
    screen.note(f"{verdict} late complete from {rescue.worker.spec.name} (attempt {rescue.attempt}; the job is "
                f"attempt {rescue.rescued_attempt}'s, which {rescue.rescued_by} completed): {rescue.refusal}")


async def _narrate_until_completed(story: Story, manager: VideoJobManager) -> None:
    """Each time the change feed says the frozen job changed, tell its new events (time_out, start, complete)."""
    rescue, told = story.rescue, 0
    assert rescue.job_id is not None
    while rescue.rescued_by is None:
        await rescue.changed.wait()
        rescue.changed.clear()
        history = await manager.get_job_history(rescue.job_id)
        for event in history[told:]:
            if event.type == "time_out":
                story.screen.note(f"stuck detector: time_out processing -> queued on job {short_id(event.job_id)} "
                                  f"attempt {event.attempt} by {event.actor}: its lease of "
                                  f"{event.data.get('lease_seconds')}s ran out")
            elif event.type in ("start", "complete") and event.attempt > rescue.attempt:
                story.screen.note(f"{event.actor} {'claims' if event.type == 'start' else 'completes'} job "
                                  f"{short_id(event.job_id)} as attempt {event.attempt}")
                if event.type == "complete":
                    rescue.rescued_by, rescue.rescued_attempt = event.actor, event.attempt
        told = len(history)
