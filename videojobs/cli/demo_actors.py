"""The demo's users: three people in two teams uploading 50 videos, retrying failures, cancelling one job.

Everything they do goes through the public VideoJobManager as themselves (`as_user`, under
Row Level Security). The processors are real workers in other processes (demo_workers.py);
the users hear about their jobs from the change feed (`on_change`), as an application would.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from uuid import UUID

from ..errors import InvalidTransition
from ..manager import VideoJobManager
from ..models import EnhancementLevel, Platform, QualityPreset
from .demo_handlers import BUSY, FAULTS
from .demo_screen import DemoScreen
from .render import short_id

USERS = ("alice", "bob", "carol")
TEAMS = {"studio": ("alice", "bob"), "agency": ("carol", "bob")}  # first member owns the team
FILES = ("holiday", "cooking", "unboxing", "interview", "keynote", "wedding", "skate", "recipe", "podcast", "gameplay")
EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm")
PLATFORMS = tuple(p.value for p in Platform)
PRESETS = tuple(p.value for p in QualityPreset)
ENHANCEMENTS = tuple(e.value for e in EnhancementLevel)
TOTAL_JOBS, FIRST_WAVE = 50, 30
BUSY_UPLOAD = 14  # the 14th upload meets a busy encoder on its first attempt
CANCELLED_UPLOAD, CANCEL_AT_CLIP = 26, 2  # carol cancels her upload no. 26 once 2 of its 6 clips are encoded
SETTLED = ("completed", "failed", "cancelled")


@dataclass
class Cancellation:
    """The mid-encode cancel: which job, when its owner cancelled it, and the handler seen stopping."""

    job_id: UUID | None = None
    owner: str = "carol"
    mid_encode: asyncio.Event = field(default_factory=asyncio.Event)  # its handler encoded CANCEL_AT_CLIP clips
    cancelled_at: float | None = None  # wall clock, as the handlers' lines
    refused: str | None = None
    handler_stopped: asyncio.Event = field(default_factory=asyncio.Event)
    stop_line: dict | None = None  # the handler's `cancelled` line


@dataclass
class Cast:
    """The users' side of the scenario: uploads, the jobs not settled yet, the failures to retry."""

    manager: VideoJobManager
    screen: DemoScreen
    pace: float = 1.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    teams: dict[str, UUID] = field(default_factory=dict)
    owners: dict[UUID, str] = field(default_factory=dict)
    open_jobs: set[UUID] = field(default_factory=set)
    damaged: set[UUID] = field(default_factory=set)  # uploads whose first attempt fails: retried by their owner
    retried: set[UUID] = field(default_factory=set)
    created: int = 0
    creating: bool = True
    cancellation: Cancellation = field(default_factory=Cancellation)
    background: list[asyncio.Task] = field(default_factory=list)

    async def create_teams(self) -> None:
        """Two teams; bob is in both."""
        for name, (owner, *members) in TEAMS.items():
            team = await self.manager.teams.create(name, owner)
            for member in members:
                await self.manager.teams.add_member(team.team_id, member)
            self.teams[name] = team.team_id
        self.screen.note("alice and bob share team 'studio'; carol and bob share team 'agency'")

    def _upload(self, user: str, number: int) -> dict:
        rng = self.rng
        team = {"alice": "studio", "carol": "agency"}.get(user) or rng.choice(("studio", "agency"))
        tag = list(FAULTS)[number // 8 % len(FAULTS)] if number % 8 == 3 else BUSY if number == BUSY_UPLOAD else None
        name = f"{rng.choice(FILES)}-{number:02d}{'.' + tag if tag else ''}{rng.choice(EXTENSIONS)}"
        return dict(user_id=user, team_id=self.teams[team], original_filename=name,
                    original_filesize=rng.randint(5, 900) * 1_048_576,
                    clip_count=6 if number == CANCELLED_UPLOAD else rng.randint(2, 5),
                    quality_preset=rng.choice(PRESETS), enhancement_level=rng.choice(ENHANCEMENTS),
                    platform_target=rng.choice(PLATFORMS))

    def _plan(self, job_id: UUID, user: str, filename: str) -> None:
        self.created += 1
        self.open_jobs.add(job_id)
        self.owners[job_id] = user
        if any(f".{tag}." in filename for tag in FAULTS):
            self.damaged.add(job_id)
        if self.created == CANCELLED_UPLOAD:
            self.cancellation.job_id, self.cancellation.owner = job_id, user

    async def upload_first_wave(self) -> None:
        """Each user uploads a batch at once (bulk_create_jobs, one round trip per user)."""
        for user in USERS:
            batch = [self._upload(user, self.created + i + 1) for i in range(FIRST_WAVE // len(USERS))]
            jobs = await self.manager.as_user(user).bulk_create_jobs(batch)
            for job in jobs:
                self._plan(job.job_id, user, job.original_filename)
            self.screen.note(f"{user} uploads {len(jobs)} videos at once (bulk_create_jobs)")

    async def upload_the_rest(self) -> None:
        """The other uploads trickle in while the workers run."""
        while self.created < TOTAL_JOBS:
            user = USERS[self.created % len(USERS)]
            job = await self.manager.as_user(user).create_job(**self._upload(user, self.created + 1))
            self._plan(job.job_id, user, job.original_filename)
            self.screen.note(f"{user} uploads {job.original_filename} for {job.platform_target} "
                             f"({job.clip_count} clips, {job.quality_preset})")
            await asyncio.sleep(0.8 * self.pace)
        self.creating = False

    async def cancel_mid_encode(self) -> None:
        """The owner cancels the chosen upload while a worker is encoding it (its handler said so)."""
        story = self.cancellation
        await _within(story.mid_encode, 90, f"upload no. {CANCELLED_UPLOAD} reached clip {CANCEL_AT_CLIP} of its encode")
        assert story.job_id is not None
        story.cancelled_at = time.time()
        try:
            await self.manager.as_user(story.owner).cancel_job(story.job_id, "uploaded the wrong cut")
        except InvalidTransition as refused:
            story.refused = str(refused)
            self.screen.note(f"{story.owner} tried to cancel {short_id(story.job_id)} mid-encode: {refused}")
            return
        self.screen.note(f"{story.owner} cancels job {short_id(story.job_id)} mid-encode "
                         f"({CANCEL_AT_CLIP} of its 6 clips done): \"uploaded the wrong cut\"")
        await _within(story.handler_stopped, 30, f"the handler of {short_id(story.job_id)} stopped after the cancel")

    def on_change(self, job_id: UUID, status: str) -> None:
        """A job changed (the change feed): settle it, or have its owner retry a damaged upload's failure."""
        if job_id not in self.open_jobs or status not in SETTLED:
            return
        if status == "failed" and job_id in self.damaged and job_id not in self.retried:
            self.retried.add(job_id)
            self.background.append(asyncio.create_task(self._retry_later(job_id)))
            return
        self.open_jobs.discard(job_id)

    async def _retry_later(self, job_id: UUID) -> None:
        """The owner re-exports the upload and retries (as themselves, under RLS)."""
        await asyncio.sleep(1.5 * self.pace)
        owner = self.owners[job_id]
        await self.manager.as_user(owner).retry_job(job_id, "re-exported the upload")
        self.screen.note(f"{owner} retries job {short_id(job_id)}: back to queued with a fresh attempt budget")

    def finished(self) -> bool:
        """No uploads pending, no retry pending, and every job settled."""
        return not self.creating and not self.open_jobs and all(task.done() for task in self.background)


async def _within(event: asyncio.Event, seconds: float, what: str) -> None:
    """Wait for `event`; a TimeoutError that says what did not happen, and how long it was given."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        raise TimeoutError(f"not seen: {what} (within {seconds:g} s)") from None
