"""The model-based test with real worker processes (issue 18): `vjm worker` subprocesses run jobs while the
model's rules act on them.

A hypothesis `RuleBasedStateMachine` creates jobs as end users (what each job's handler does is
in its filename: tests.support.worker_handlers), starts `vjm worker` processes (1 s leases), and
meanwhile cancels, retries and deletes jobs as users, runs the stuck detector's pass, lets time
pass, stops workers gracefully (SIGTERM: release), kills them (SIGKILL), and freezes and thaws
them (SIGSTOP/SIGCONT: the lease runs out, the job is re-run, the zombie's late report is
fenced off). The workers race the rules, so the model predicts what no race can change: who may
see a job (JobNotFound otherwise), and the state of a job the model itself settled (cancelled or
deleted: no worker may move it); a refusal names a state that refuses the trigger.

After every step: no job has two `complete` events, and every `complete` is by the attempt of
the job's latest `start`. At the end every worker is killed, a fresh one runs what is left, and
every job ends in a legal final state (completed, failed, cancelled, deleted), the read model
equals a fold of the log and the hash chain verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from listeners import Projector, ProjectorConfig
from statemachine import ConcurrencyConflict, InvalidTransition, JobNotFound
from store.projections import verify_projections
from tests.support.databases import create_migrated_database, drop_database
from tests.support.factories import create_data
from tests.support.projections import log_and_checkpoint
from tests.support.waiting import eventually
from tests.support.workers import HANDLER, VJM
from videojobs import Settings, VideoJobManager
from videojobs import connect as connect_manager

USERS = ("A", "B", "C")
TEAM = ("A", "B")  # C belongs to no team
KINDS = ("ok", "slow-0.3", "boom", "retry-0.2", "transient", "progress-3", "beat-1.5")
FINAL = {"completed", "failed", "cancelled", "deleted"}
MAX_WORKERS = 2
WORKER_OPTIONS = ("--lease", "1", "--poll-interval", "0.1", "--concurrency", "2", "--shutdown-timeout", "0.5")
ACTIONS = {"cancel": {"queued", "processing"}, "retry": {"failed", "cancelled"},
           "delete": {"queued", "completed", "failed", "cancelled"}}
SETTLES = {"cancel": "cancelled", "delete": "deleted", "retry": None}


@dataclass
class ModelJob:
    """What the model knows of one job: its owner and team, and the state it settled it in (None: in play)."""

    user: str
    in_team: bool
    settled: str | None = None


class WorkerProcessHandle:
    """One `vjm worker` subprocess, its output in a file (no pipe to fill between steps), and the state the rules
    put it in: `running`, `frozen`, `frozen_stopping` (SIGTERM waits for SIGCONT) or `gone`. Rules choose by this
    state, never by polling the process, so that hypothesis replays the same choices."""

    def __init__(self, url: str, log_dir: str, number: int) -> None:
        self.log = open(os.path.join(log_dir, f"worker{number}.log"), "w")  # noqa: SIM115 - closed in close()
        env = {k: v for k, v in os.environ.items() if k != "VJM_DATABASE_URL"}
        self.process = subprocess.Popen([VJM, "--log-level", "WARNING", "worker", HANDLER, "--database-url", url,
                                         *WORKER_OPTIONS], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.state = "running"

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig`; a stop (SIGTERM while running, SIGKILL, SIGCONT after a SIGTERM) waits for the exit."""
        self.process.send_signal(sig)
        if sig == signal.SIGKILL or (sig == signal.SIGTERM and self.state == "running") or (
                sig == signal.SIGCONT and self.state == "frozen_stopping"):
            self.process.wait(30)
            self.state = "gone"
        elif sig == signal.SIGTERM:
            self.state = "frozen_stopping"
        elif sig == signal.SIGSTOP:
            self.state = "frozen" if self.state == "running" else self.state
        elif sig == signal.SIGCONT:
            self.state = "running"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait(30)
        self.state = "gone"
        self.log.close()


class WorkerJobSystem(RuleBasedStateMachine):
    """Real workers, a real projector and users' actions against a model of what no race can change."""

    def __init__(self, admin_url: str, template: str):
        super().__init__()
        self._admin_url = admin_url
        self._runner = asyncio.Runner()
        self._stack = contextlib.AsyncExitStack()
        self._logs = tempfile.TemporaryDirectory(prefix="vjm-model-workers-")
        self.url = self._run(create_migrated_database(admin_url, template=template))
        self.manager: VideoJobManager = self._run(self._stack.enter_async_context(connect_manager(
            settings=Settings(database_url=self.url), listeners=False, consistency_timeout=5)))
        self.admin: asyncpg.Connection = self._run(asyncpg.connect(self.url))
        self.projector = Projector(ProjectorConfig(database_url=self.url, poll_interval=0.05, batch_size=7))
        self._run(self.projector.start())
        self.team_id: UUID | None = None
        self.jobs: dict[UUID, ModelJob] = {}
        self.workers: list[WorkerProcessHandle] = []
        self.spawned = 0
        self.faults: dict[str, int] = {}

    def _run(self, coro):
        return self._runner.run(coro)

    def _count(self, what: str) -> None:
        self.faults[what] = self.faults.get(what, 0) + 1

    def _in(self, *states: str) -> list[WorkerProcessHandle]:
        return [w for w in self.workers if w.state in states]

    # -- rules --------------------------------------------------------------------------------

    @initialize(kinds=st.lists(st.sampled_from(KINDS), min_size=2, max_size=6))
    def team_worker_and_first_jobs(self, kinds: list[str]) -> None:
        """A team, a worker that runs from the start (so that jobs meet workers in every example), a few jobs."""
        team = self._run(self.manager.teams.create("T1", TEAM[0]))
        for member in TEAM[1:]:
            self._run(self.manager.teams.add_member(team.team_id, member))
        self.team_id = team.team_id
        self.start_worker()
        self.create("A", True, 2, kinds)

    @rule(user=st.sampled_from(USERS), in_team=st.booleans(), max_attempts=st.integers(1, 3),
          kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3))
    def create(self, user: str, in_team: bool, max_attempts: int, kinds: list[str]) -> None:
        in_team = in_team and user in TEAM
        for kind in kinds:
            job = self._run(self.manager.as_user(user).create_job(
                user_id=user, team_id=self.team_id if in_team else None,
                **create_data(original_filename=f"{kind}.mp4", max_attempts=max_attempts)))
            self.jobs[job.job_id] = ModelJob(user, in_team)

    @precondition(lambda self: len(self._in("running", "frozen", "frozen_stopping")) < MAX_WORKERS)
    @rule()
    def start_worker(self) -> None:
        self.spawned += 1
        self.workers.append(WorkerProcessHandle(self.url, self._logs.name, self.spawned))

    @precondition(lambda self: bool(self._in("running", "frozen")))
    @rule(data=st.data(), how=st.sampled_from([signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP]))
    def signal_a_worker(self, data, how: signal.Signals) -> None:
        """SIGTERM: stop gracefully (release what is left); SIGKILL: die; SIGSTOP: freeze (thawed later)."""
        data.draw(st.sampled_from(self._in("running", "frozen"))).signal(how)
        self._count(how.name)

    @precondition(lambda self: bool(self._in("frozen", "frozen_stopping")))
    @rule(data=st.data())
    def thaw_a_worker(self, data) -> None:
        data.draw(st.sampled_from(self._in("frozen", "frozen_stopping"))).signal(signal.SIGCONT)
        self._count("SIGCONT")

    @rule(data=st.data(), action=st.sampled_from(sorted(ACTIONS)), user=st.sampled_from(USERS))
    def user_acts(self, data, action: str, user: str) -> None:
        if not self.jobs:
            return
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        job = self.jobs[job_id]
        actor = self.manager.as_user(user)
        call = {"cancel": actor.cancel_job, "retry": actor.retry_job, "delete": actor.delete_job}[action]
        visible = job.user == user or (job.in_team and user in TEAM)
        try:
            self._run(call(job_id))
        except JobNotFound:
            assert not visible, f"{user} should see {job_id}"
            return
        except InvalidTransition as exc:
            assert visible and exc.state not in ACTIONS[action], (job, exc)
            assert job.settled is None or exc.state == job.settled, (job, exc)
            return
        except ConcurrencyConflict:  # a worker wrote the job at the same version: nothing was written
            assert visible and job.settled is None, job  # no worker writes a job the model settled
            self._count("conflicts")
            return
        assert visible and job.settled in (None, *ACTIONS[action]), (job, action)
        job.settled = SETTLES[action]

    @rule()
    def stuck_detector_pass(self) -> None:
        """What the stuck detector does each pass: time out the jobs whose lease ran out (and idle unleased ones)."""
        result = self._run(self.manager.maintenance.reset_stuck_jobs(older_than=0))
        self.faults["timed_out"] = self.faults.get("timed_out", 0) + result.reset

    @rule(seconds=st.sampled_from([0.2, 0.6, 1.5]))
    def time_passes(self, seconds: float) -> None:
        self._run(asyncio.sleep(seconds))  # the rule itself: wall time passes (leases run out, backoffs end)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def no_job_is_completed_twice(self) -> None:
        twice = self._run(self.admin.fetch(
            "SELECT job_id, count(*) FROM vjm.job_events WHERE type = 'complete' GROUP BY job_id HAVING count(*) > 1"))
        assert not twice, twice

    @invariant()
    def every_completion_is_by_the_current_attempt(self) -> None:
        stale = self._run(self.admin.fetch(
            "SELECT c.job_id, c.attempt FROM vjm.job_events c WHERE c.type = 'complete' AND c.attempt IS DISTINCT FROM "
            "(SELECT s.attempt FROM vjm.job_events s WHERE s.job_id = c.job_id AND s.type = 'start' "
            "AND s.version < c.version ORDER BY s.version DESC LIMIT 1)"))
        assert not stale, stale

    @invariant()
    def settled_jobs_stay_settled(self) -> None:
        heads = self._run(self._heads())
        for job_id, job in self.jobs.items():
            assert job.settled is None or heads[job_id] == job.settled, (job_id, job, heads[job_id])

    async def _heads(self) -> dict[UUID, str]:
        rows = await self.admin.fetch("SELECT DISTINCT ON (job_id) job_id, to_state FROM vjm.job_events "
                                      "ORDER BY job_id, version DESC")
        return {row["job_id"]: row["to_state"] for row in rows}

    # -- the end ------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.jobs:
                self._finish()
        finally:
            print(f"worker model example: {len(self.jobs)} jobs, {self.spawned} workers, faults {self.faults}, "
                  f"events {self._run(self._event_counts())}")
            for worker in self.workers:
                worker.close()
            self._run(self._close())
            self._runner.close()
            self._logs.cleanup()

    def _finish(self) -> None:
        """Kill every worker; a fresh one runs what is left; every job ends in a final state, exactly once."""
        for worker in self.workers:
            worker.close()
        last = WorkerProcessHandle(self.url, self._logs.name, 0)
        self.workers.append(last)
        self._run(eventually(self._all_final, 90, "every job in a final state"))
        heads = self._run(self._heads())
        assert set(heads) == set(self.jobs) and set(heads.values()) <= FINAL, heads
        self.no_job_is_completed_twice()
        self.settled_jobs_stay_settled()
        self._run(eventually(self._caught_up, 20, "the projector caught up"))
        result = self._run(verify_projections(self.url))
        assert result.ok, [d.model_dump(exclude={"live", "expected"}) for d in result.differences[:3]]
        assert self._run(self.manager.audit.verify_history()).ok

    async def _all_final(self) -> bool:
        await self.manager.maintenance.reset_stuck_jobs(older_than=0)  # the killed workers' leases run out
        return set((await self._heads()).values()) <= FINAL

    async def _event_counts(self) -> dict[str, int]:
        rows = await self.admin.fetch("SELECT type, count(*) FROM vjm.job_events GROUP BY type ORDER BY type")
        return {row["type"]: row["count"] for row in rows}

    async def _caught_up(self) -> bool:
        total, applied, _ = await log_and_checkpoint(self.url)
        return total == applied

    async def _close(self) -> None:
        await self.projector.stop()
        await self.admin.close()
        await self._stack.aclose()
        await drop_database(self._admin_url, self.url)

