"""The demo's cast: three users in two teams uploading 50 videos, and four simulated processors.

Everything goes through the public VideoJobManager: users act under Row Level
Security (`as_user`), processors claim with `claim_jobs` and report with their
attempt token. One processor hangs on purpose; the stuck detector resets its job,
another processor finishes it, and the hung one's late `complete` is fenced off.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from uuid import UUID

from ..errors import InvalidTransition, VJMError
from ..manager import VideoJobManager
from ..models import Attempt, EnhancementLevel, Platform, QualityPreset
from .demo_screen import DemoScreen, WorkerView
from .render import short_id

USERS = ("alice", "bob", "carol")
TEAMS = {"studio": ("alice", "bob"), "agency": ("carol", "bob")}  # first member owns the team
FILES = ("holiday", "cooking", "unboxing", "interview", "keynote", "wedding", "skate", "recipe", "podcast", "gameplay")
EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm")
PLATFORMS = tuple(p.value for p in Platform)
PRESETS = tuple(p.value for p in QualityPreset)
ENHANCEMENTS = tuple(e.value for e in EnhancementLevel)
ERRORS = ("unsupported codec: prores_raw", "audio track missing", "corrupt moov atom", "resolution below 480p")
TOTAL_JOBS, FIRST_WAVE = 50, 30
WORKERS = ("worker-1", "worker-2", "worker-3", "worker-4")
HUNG_WORKER, HANG_ON_JOB = "worker-4", 2  # worker-4 goes silent on its second job


@dataclass
class Rescue:
    """The hang story: which job, the attempt that hung, the refusal of its late complete."""

    job_id: UUID | None = None
    attempt: int = 0
    rescued_by: str | None = None
    refusal: str | None = None


@dataclass
class Cast:
    """The scenario's shared state: open jobs, planned failures and retries, the rescue."""

    manager: VideoJobManager
    screen: DemoScreen
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    teams: dict[str, UUID] = field(default_factory=dict)
    owners: dict[UUID, str] = field(default_factory=dict)
    open_jobs: set[UUID] = field(default_factory=set)
    fail_at: dict[UUID, int] = field(default_factory=dict)  # job -> step where its first attempt fails
    retry: set[UUID] = field(default_factory=set)  # failed jobs their owner will retry
    created: int = 0
    creating: bool = True
    rescue: Rescue = field(default_factory=Rescue)
    pace: float = 1.0

    async def create_teams(self) -> None:
        """Two teams; bob is in both."""
        for name, (owner, *members) in TEAMS.items():
            team = await self.manager.teams.create(name, owner)
            for member in members:
                await self.manager.teams.add_member(team.team_id, member)
            self.teams[name] = team.team_id
        self.screen.note("alice and bob share team 'studio'; carol and bob share team 'agency'")

    def _upload(self, user: str) -> dict:
        rng = self.rng
        team = {"alice": "studio", "carol": "agency"}.get(user) or rng.choice(("studio", "agency"))
        return dict(user_id=user, team_id=self.teams[team], original_filename=f"{rng.choice(FILES)}-"
                    f"{self.created + 1:02d}{rng.choice(EXTENSIONS)}", original_filesize=rng.randint(5, 900) * 1_048_576,
                    clip_count=rng.randint(2, 6), quality_preset=rng.choice(PRESETS),
                    enhancement_level=rng.choice(ENHANCEMENTS), platform_target=rng.choice(PLATFORMS))

    def _plan(self, job_id: UUID, user: str, clip_count: int) -> None:
        self.open_jobs.add(job_id)
        self.owners[job_id] = user
        self.created += 1
        if self.created % 8 == 3:  # about one in eight fails on its first attempt
            self.fail_at[job_id] = self.rng.randint(1, clip_count)
            if self.created % 16 == 3:
                self.retry.add(job_id)

    async def upload_first_wave(self) -> None:
        """Each user uploads a batch at once (bulk_create_jobs, one round trip per user)."""
        for user in USERS:
            batch = [self._upload(user) for _ in range(FIRST_WAVE // len(USERS))]
            jobs = await self.manager.as_user(user).bulk_create_jobs(batch)
            for job in jobs:
                self._plan(job.job_id, user, job.clip_count)
            self.screen.note(f"{user} uploads {len(jobs)} videos at once (bulk_create_jobs)")

    async def upload_the_rest(self) -> None:
        """The other uploads trickle in while the processors work; carol cancels one."""
        while self.created < TOTAL_JOBS:
            user = USERS[self.created % len(USERS)]
            job = await self.manager.as_user(user).create_job(**self._upload(user))
            self._plan(job.job_id, user, job.clip_count)
            self.screen.note(f"{user} uploads {job.original_filename} for {job.platform_target} "
                             f"({job.clip_count} clips, {job.quality_preset})")
            if self.created == TOTAL_JOBS - 5:
                await self._cancel(job.job_id, "carol")
            await asyncio.sleep(0.8 * self.pace)
        self.creating = False

    async def _cancel(self, job_id: UUID, user: str) -> None:
        owner = self.owners[job_id]
        try:
            await self.manager.as_user(owner).cancel_job(job_id, "uploaded the wrong cut")
            self.open_jobs.discard(job_id)
            self.screen.note(f"{owner} cancels job {short_id(job_id)} before anyone picks it up")
        except InvalidTransition:
            self.screen.note(f"{owner} tried to cancel {short_id(job_id)}, but a processor already started it")

    async def retry_later(self, job_id: UUID) -> None:
        """The owner notices the failure and retries (as themselves, under RLS)."""
        await asyncio.sleep(1.5 * self.pace)
        owner = self.owners[job_id]
        await self.manager.as_user(owner).retry_job(job_id, "re-exported the upload")
        self.screen.note(f"{owner} retries job {short_id(job_id)}: back to queued with a fresh attempt budget")

    def finished(self) -> bool:
        """No uploads pending and every job settled."""
        return not self.creating and not self.open_jobs


class Processor:
    """A simulated video worker: claim, progress clip by clip, complete or fail."""

    def __init__(self, name: str, cast: Cast):
        self.name, self.cast = name, cast
        self.view = cast.screen.workers.setdefault(name, WorkerView())
        self.jobs_taken = 0
        self.background: list[asyncio.Task] = []

    async def run(self) -> None:
        """Work until the scenario is finished."""
        while not self.cast.finished():
            claimed = await self.cast.manager.claim_jobs(self.name, 1)
            if not claimed:
                self.view.state = "idle"
                await asyncio.sleep(0.2)  # poll: nothing queued yet
                continue
            self.jobs_taken += 1
            await self._process(claimed[0])
        self.view.state, self.view.job_id = "done", None

    async def _process(self, attempt: Attempt) -> None:
        job, view = attempt.job, self.view
        view.state, view.job_id, view.attempt, view.percent = "working", job.job_id, attempt.attempt, 0.0
        view.label = f"{job.original_filename} → {job.platform_target}"
        started = time.monotonic()
        for clip in range(1, job.clip_count + 1):
            await asyncio.sleep(self.cast.rng.uniform(0.35, 1.0) * self.cast.pace)
            if self.cast.fail_at.get(job.job_id) == clip and attempt.attempt == 1:
                return await self._fail(attempt)
            view.percent = 100.0 * clip / job.clip_count
            await self.cast.manager.report_progress(job.job_id, attempt.attempt, view.percent, clip, actor=self.name)
            if self.name == HUNG_WORKER and self.jobs_taken >= HANG_ON_JOB and not self.cast.rescue.job_id:
                return await self._hang(attempt)
        await self._complete(attempt, time.monotonic() - started)

    async def _complete(self, attempt: Attempt, seconds: float) -> None:
        job = attempt.job
        paths = [f"/processed/{job.job_id}/clip{i}.mp4" for i in range(1, job.clip_count + 1)]
        await self.cast.manager.complete_job(job.job_id, paths, round(seconds, 2), attempt.attempt, actor=self.name)
        self.cast.open_jobs.discard(job.job_id)
        self.view.finished += 1
        if job.job_id == self.cast.rescue.job_id:
            self.cast.rescue.rescued_by = self.name
            self.cast.screen.note(f"{self.name} completes the rescued job {short_id(job.job_id)} "
                                  f"(attempt {attempt.attempt})")

    async def _fail(self, attempt: Attempt) -> None:
        job_id = attempt.job_id
        error = self.cast.rng.choice(ERRORS)
        await self.cast.manager.fail_job(job_id, error, attempt.attempt, actor=self.name)
        self.view.failed += 1
        self.cast.screen.note(f"{self.name} fails job {short_id(job_id)}: {error}")
        if job_id in self.cast.retry:
            self.background.append(asyncio.create_task(self.cast.retry_later(job_id)))
        else:
            self.cast.open_jobs.discard(job_id)

    async def _hang(self, attempt: Attempt) -> None:
        """Go silent; once another worker owns the job, wake up and try to complete it anyway."""
        cast, rescue = self.cast, self.cast.rescue
        rescue.job_id, rescue.attempt = attempt.job_id, attempt.attempt
        self.view.state = "HUNG"
        cast.screen.note(f"{self.name} hangs on job {short_id(attempt.job_id)} (attempt {attempt.attempt}): "
                         f"no progress from now on")
        current = await self._wait_for_takeover(attempt)
        cast.screen.note(f"stuck detector: time_out processing -> queued on job {short_id(attempt.job_id)} "
                         f"attempt {attempt.attempt} by system:stuck_detector; {current.worker_id} claims it "
                         f"as attempt {current.attempt}")
        self.view.state = "recovering"
        try:
            await cast.manager.complete_job(attempt.job_id, ["/late.mp4"], None, attempt.attempt, actor=self.name)
            rescue.refusal = "ACCEPTED (this must not happen)"
        except InvalidTransition as refused:
            rescue.refusal = str(refused)
        cast.screen.note(f"refused late complete from {self.name} (attempt {attempt.attempt}): {rescue.refusal}")
        self.view.state, self.view.job_id = "idle", None

    async def _wait_for_takeover(self, attempt: Attempt):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                job = await self.cast.manager.get_job_by_id(attempt.job_id)
            except VJMError:
                job = None
            if job is not None and job.attempt > attempt.attempt and job.status in ("processing", "completed"):
                return job
            await asyncio.sleep(0.2)  # poll: the detector's 3 s timeout, then a claim
        raise TimeoutError("the hung job was never taken over")
