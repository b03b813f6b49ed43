"""A model-based test of the real system (issue 9, part 1).

A hypothesis `RuleBasedStateMachine` drives real PostgreSQL, the real
VideoJobManager (as the trusted service and as end users) and a real Projector
that it kills and restarts, and keeps a tiny model of what must be true: each
job's owner, team, state, attempt, attempt budget and version. Every rule
predicts its outcome from the model (including the refusals: JobNotFound for a
job the user may not see, InvalidTransition for an illegal trigger, StaleAttempt
for a fenced-off worker). After every step the invariants are checked:

- the read model equals a fold of the committed events (store.projections.verify_projections,
  which also recounts the stats: invariants 1 and 8);
- each user sees exactly the jobs they may see, in the state the model predicts;
- the projector checkpoint never goes backwards;
- the stats equal a recount of the model;
- the hash chain verifies and covers every event the model expects.

Each example gets its own database (a clone of the session template) and runs
its steps on a dedicated event loop (asyncio.Runner) created in __init__ and
closed in teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from listeners import Projector, ProjectorConfig
from statemachine import InvalidTransition, JobNotFound, StaleAttempt
from store.projections import verify_projections
from tests.faults.worker_model import WorkerJobSystem
from tests.support.databases import create_migrated_database, drop_database
from tests.support.factories import create_data
from tests.support.fault_sizes import scaled
from tests.support.projections import log_and_checkpoint
from tests.support.waiting import eventually
from videojobs import Settings, VideoJobManager
from videojobs import connect as connect_manager

USERS = ("A", "B", "C", "D")
TEAMS = {"T1": ("A", "B"), "T2": ("C",)}  # D belongs to no team
REFILL = {"queued", "failed", "cancelled"}


@dataclass
class ModelJob:
    """What the model knows about one job."""

    user: str
    team: str | None
    state: str
    max_attempts: int
    attempts_left: int
    attempt: int = 0
    version: int = 1
    turn: int = 0  # its turn in the claim order (users take turns: sql/schema/063_claims.sql)

    def moved(self, state: str) -> None:
        self.state, self.version = state, self.version + 1


class JobSystem(RuleBasedStateMachine):
    """The real system against a model of it; see the module docstring."""

    def __init__(self, admin_url: str, template: str):
        super().__init__()
        self._admin_url = admin_url
        self._runner = asyncio.Runner()
        self._stack = contextlib.AsyncExitStack()
        self.url = self._run(create_migrated_database(admin_url, template=template))
        self.manager: VideoJobManager = self._run(self._stack.enter_async_context(connect_manager(
            settings=Settings(database_url=self.url), listeners=False, consistency_timeout=5)))
        self.admin: asyncpg.Connection = self._run(asyncpg.connect(self.url))
        self.team_ids: dict[str, UUID] = {}
        self.team_names: dict[UUID, str] = {}
        self.jobs: dict[UUID, ModelJob] = {}
        self.order: list[UUID] = []  # creation order (within a turn, claims take the oldest queued job)
        self.user = "A"
        self.projector: Projector | None = None
        self.checkpoint: tuple[int, int] = (0, 0)
        self.faults = Counter()
        self._run(self._start_projector())

    def _run(self, coro):
        return self._runner.run(coro)

    async def _start_projector(self) -> None:
        self.projector = Projector(ProjectorConfig(database_url=self.url, poll_interval=0.05, max_backoff=0.2,
                                                   batch_size=7))
        await self.projector.start()

    def teardown(self) -> None:
        print(f"model example: {len(self.jobs)} jobs, {sum(j.version for j in self.jobs.values())} events, "
              f"faults {dict(self.faults)}")

        async def close() -> None:
            if self.projector is not None:
                await self.projector.stop()
            await self.admin.close()
            await self._stack.aclose()
            await drop_database(self._admin_url, self.url)
        try:
            self._run(close())
        finally:
            self._runner.close()

    # -- helpers ------------------------------------------------------------------------------

    def _visible(self, user: str, job: ModelJob) -> bool:
        return job.user == user or (job.team is not None and user in TEAMS[job.team])

    def _pick(self, data, states: set[str] | None = None) -> UUID | None:
        ids = [i for i in self.order if states is None or self.jobs[i].state in states]
        return data.draw(st.sampled_from(ids)) if ids else None

    def _expect_user_action(self, job_id: UUID, allowed_from: set[str], action) -> bool:
        """Run a user action; check the outcome the model predicts. True if it happened."""
        job = self.jobs[job_id]
        try:
            self._run(action)
        except JobNotFound:
            assert not self._visible(self.user, job), f"{self.user} should see {job}"
            return False
        except InvalidTransition as exc:
            assert self._visible(self.user, job) and job.state not in allowed_from, (job, exc)
            return False
        assert self._visible(self.user, job) and job.state in allowed_from, job
        return True

    # -- rules --------------------------------------------------------------------------------

    @initialize()
    def teams(self) -> None:
        for name, members in TEAMS.items():
            team = self._run(self.manager.teams.create(name, members[0]))
            for member in members[1:]:
                self._run(self.manager.teams.add_member(team.team_id, member))
            self.team_ids[name], self.team_names[team.team_id] = team.team_id, name

    @rule(user=st.sampled_from(USERS))
    def switch_user(self, user: str) -> None:
        self.user = user

    @rule(in_team=st.booleans(), max_attempts=st.integers(1, 3), count=st.integers(1, 3))
    def create(self, in_team: bool, max_attempts: int, count: int) -> None:
        team = next((t for t, members in TEAMS.items() if self.user in members), None) if in_team else None
        for _ in range(count):
            job = self._run(self.manager.as_user(self.user).create_job(
                user_id=self.user, team_id=self.team_ids[team] if team else None, **create_data(max_attempts=max_attempts)))
            assert (job.status, job.version, job.attempts_left) == ("queued", 1, max_attempts)
            self.jobs[job.job_id] = ModelJob(self.user, team, "queued", max_attempts, max_attempts,
                                             turn=self._first_turn(self.user))
            self.order.append(job.job_id)

    def _first_turn(self, user: str) -> int:
        """A new job's turn: after its user's queued jobs, not before the turn being served (a job keeps its turn
        when it returns to the queue)."""
        queued = [j for j in self.jobs.values() if j.state == "queued"]
        serving = min((j.turn for j in queued), default=0)
        own = max((j.turn + 1 for j in queued if j.user == user), default=0)
        return max(serving, own)

    @precondition(lambda self: self.projector is not None)
    @rule()
    def claim(self) -> None:
        queued = sorted((i for i in self.order if self.jobs[i].state == "queued"),
                        key=lambda i: (self.jobs[i].turn, self.order.index(i)))
        claimed = self._run(self.manager.claim_jobs("worker", limit=1))
        assert [a.job_id for a in claimed] == queued[:1], "claims take the first turn's oldest queued job"
        if claimed:
            job = self.jobs[claimed[0].job_id]
            job.moved("processing")
            job.attempt, job.attempts_left = job.attempt + 1, job.attempts_left - 1
            assert claimed[0].attempt == job.attempt and claimed[0].job.version == job.version

    @rule(data=st.data(), percent=st.floats(0, 100))
    def progress(self, data, percent: float) -> None:
        job_id = self._pick(data, {"processing"})
        if job_id is not None:
            job = self.jobs[job_id]
            row = self._run(self.manager.report_progress(job_id, job.attempt, percent=percent))
            job.moved("processing")
            assert row.version == job.version

    @rule(data=st.data(), succeed=st.booleans())
    def finish(self, data, succeed: bool) -> None:
        job_id = self._pick(data, {"processing"})
        if job_id is None:
            return
        job = self.jobs[job_id]
        if succeed:
            row = self._run(self.manager.complete_job(job_id, ["/out/a.mp4"], attempt=job.attempt))
        else:
            row = self._run(self.manager.fail_job(job_id, "bad input", attempt=job.attempt))
        job.moved("completed" if succeed else "failed")
        assert (row.status, row.version) == (job.state, job.version)

    @rule(data=st.data())
    def late_worker(self, data) -> None:
        """A worker from an earlier attempt reports: fenced off (docs/ARCHITECTURE.md, invariant 5)."""
        job_id = self._pick(data, {"processing"})
        if job_id is not None and self.jobs[job_id].attempt > 1:
            with pytest.raises(StaleAttempt):
                self._run(self.manager.complete_job(job_id, [], attempt=self.jobs[job_id].attempt - 1))

    @rule(data=st.data())
    def cancel(self, data) -> None:
        job_id = self._pick(data)
        if job_id is not None and self._expect_user_action(
                job_id, {"queued", "processing"}, self.manager.as_user(self.user).cancel_job(job_id)):
            self.jobs[job_id].moved("cancelled")

    @rule(data=st.data())
    def retry(self, data) -> None:
        job_id = self._pick(data)
        if job_id is not None and self._expect_user_action(
                job_id, {"failed", "cancelled"}, self.manager.as_user(self.user).retry_job(job_id)):
            job = self.jobs[job_id]
            job.moved("queued")
            job.attempts_left = job.max_attempts

    @rule(data=st.data())
    def delete(self, data) -> None:
        job_id = self._pick(data)
        if job_id is not None and self._expect_user_action(
                job_id, {"queued", "completed", "failed", "cancelled"},
                self.manager.as_user(self.user).delete_job(job_id)):
            self.jobs[job_id].moved("deleted")

    @precondition(lambda self: self.projector is not None)
    @rule()
    def time_passes(self) -> None:
        """Every processing job is now idle for longer than the (zero) timeout: it is stuck."""
        processing = [j for j in self.jobs.values() if j.state == "processing"]
        result = self._run(self.manager.maintenance.reset_stuck_jobs(older_than=0))
        assert (result.found, result.skipped) == (len(processing), 0)
        for job in processing:
            job.moved("queued" if job.attempts_left > 0 else "failed")
        assert result.requeued == sum(j.state == "queued" for j in processing)
        self.faults["stuck_resets"] += result.reset

    @precondition(lambda self: self.projector is not None and self.projector.backend_pid is not None)
    @rule()
    def kill_projector_connection(self) -> None:
        assert self._run(self.admin.fetchval("SELECT pg_terminate_backend($1)", self.projector.backend_pid))
        self.faults["projector_killed"] += 1

    @precondition(lambda self: self.projector is not None)
    @rule(stay_down=st.booleans())
    def restart_projector(self, stay_down: bool) -> None:
        self._run(self.projector.stop())
        self.projector = None
        self.faults["projector_stopped"] += 1
        if not stay_down:
            self._run(self._start_projector())

    @precondition(lambda self: self.projector is None)
    @rule()
    def start_projector(self) -> None:
        self._run(self._start_projector())

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def checkpoint_never_goes_backwards(self) -> None:
        row = self._run(self.admin.fetchrow(
            "SELECT xact_id::text::bigint, position FROM vjm.projection_checkpoints WHERE name = 'main'"))
        current = tuple(row) if row else (0, 0)
        assert current >= self.checkpoint, (current, self.checkpoint)
        self.checkpoint = current

    @invariant()
    def read_model_is_a_fold_of_the_events(self) -> None:
        result = self._run(verify_projections(self.url))
        assert result.ok, [d.model_dump(exclude={"live", "expected"}) for d in result.differences[:3]]

    @invariant()
    def hash_chain_verifies(self) -> None:
        report = self._run(self.manager.audit.verify_history())
        assert report.ok and report.checked == sum(j.version for j in self.jobs.values()), report

    @invariant()
    def users_see_exactly_their_jobs(self) -> None:
        if self.projector is None:
            return  # reads would wait for a projection nobody is applying
        self._run(self._caught_up())
        for user in USERS:
            page = self._run(self.manager.as_user(user).list_jobs(limit=500))
            seen = {j.job_id: (j.status, j.version) for j in page.items}
            expected = {i: (j.state, j.version) for i, j in self.jobs.items()
                        if j.state != "deleted" and self._visible(user, j)}
            assert seen == expected, user
            assert page.total == len(expected)

    @invariant()
    def stats_equal_a_recount(self) -> None:
        if self.projector is None:
            return
        self._run(self._caught_up())
        for user in USERS:
            stats = self._run(self.manager.get_job_stats(user_id=user))
            mine = Counter(j.state for j in self.jobs.values() if j.user == user and j.state != "deleted")
            assert (stats.total_jobs, stats.queued_jobs, stats.processing_jobs, stats.completed_jobs,
                    stats.failed_jobs, stats.cancelled_jobs) == (
                sum(mine.values()), mine["queued"], mine["processing"], mine["completed"], mine["failed"],
                mine["cancelled"]), user

    async def _caught_up(self) -> None:
        async def done() -> bool:
            total, applied, _ = await log_and_checkpoint(self.url)
            return total == applied
        await eventually(done, 20, "the projector caught up")


@pytest.mark.slow
def test_model_based(sync_template: tuple[str, str]) -> None:
    admin_url, template = sync_template
    run_state_machine_as_test(lambda: JobSystem(admin_url, template), settings=settings(
        max_examples=scaled(10), stateful_step_count=scaled(40, minimum=10), deadline=None, derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]))


@pytest.mark.slow
def test_model_based_with_worker_processes(sync_template: tuple[str, str]) -> None:
    """Real `vjm worker` processes run the jobs while the rules act (tests/faults/worker_model.py): no job is
    completed twice, and every job ends in a legal final state."""
    admin_url, template = sync_template
    run_state_machine_as_test(lambda: WorkerJobSystem(admin_url, template), settings=settings(
        max_examples=scaled(4), stateful_step_count=scaled(30, minimum=10), deadline=None, derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]))
