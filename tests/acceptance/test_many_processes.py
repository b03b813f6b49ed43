"""Many processes on one database (issue 22, item 2): three separate `vjm up` processes (each on its own port,
each with its own projector candidate, stuck detector and change-feed reader) and four `vjm worker`
processes share one database, real processes all.

Jobs are created through every API and the workers take each one to the end. An event stream follows each
API process from the start. In each round the process whose projector leads is killed with SIGKILL while
jobs are being created through the others: another process's projector takes the lease within 5 s
(measured from the kill to the moment a survivor's /healthz says it leads, polled with a deadline), and a
new `vjm up` takes the dead one's place (as a standby, with a stream of its own from seq 0). Afterwards

- every stream on a running process received exactly the change feed: every seq once, in order, each
  change as the feed holds it; per job, versions only go up, each (version, status) is the log's event of
  that version, and the last one is the job's head in the log (the feed has one row per job per applied
  batch: a job's changes applied in one batch arrive as its newest);
- the stream of each killed process received a prefix of the feed, and resuming it on a survivor with its
  last id gives the rest, nothing twice;
- the projection equals the fold of the log (`verify`), and the checkpoint counted every event of the
  log exactly once: nothing lost, nothing applied twice;
- `vjm status` names the real leader and its standbys before each kill, and the last new leader at the end.

CI runs two rounds; VJM_FAULT_SCALE=5 runs ten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import cycle

import asyncpg
import httpx

from tests.support.api_processes import ApiProcess, StreamClient, start_api, stop_api
from tests.support.cli import avjm
from tests.support.fault_sizes import scaled
from tests.support.http_app import JOB
from tests.support.tokens import SERVICE
from tests.support.waiting import eventually
from tests.support.workers import worker_spawner
from videojobs import Settings, connect

API_PROCESSES, WORKERS, ROUNDS = 3, 4, scaled(2)
JOBS_FIRST, JOBS_AFTER_EACH_HANDOFF = 24, 12
KINDS = ("ok-0", "progress-3", "slow-0.2")  # what tests.support.worker_handlers does with each job
HANDOFF_SECONDS = 5.0
LEASE = "SELECT holder_pid, vjm.projector_lease_live(l) AS live FROM vjm.projector_leases l WHERE name = 'main'"
Change = tuple[int, str, int, str]  # seq, job id, version, status


@dataclass
class Deployment:
    """The running API processes, the stream following each one, the jobs created, the handoffs measured."""

    database_url: str
    running: list[ApiProcess] = field(default_factory=list)
    streams: dict[int, StreamClient] = field(default_factory=dict)  # by API pid, killed ones included
    killed: list[ApiProcess] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    handoffs: list[float] = field(default_factory=list)

    async def add(self, api: ApiProcess) -> None:
        """Run `api` and follow its event stream from the start of the feed."""
        self.running.append(api)
        stream = self.streams[api.pid] = StreamClient(api.base)
        stream.start()
        await asyncio.wait_for(stream.opened.wait(), 20)
        await eventually(lambda: _serves_one(api), 20, f"process {api.pid} serving its stream")

    async def close(self) -> None:
        for stream in self.streams.values():
            await stream.close()
        await asyncio.gather(*(stop_api(api) for api in self.running + self.killed))


async def the_leader(apis: list[ApiProcess], database_url: str, within: float = 30) -> ApiProcess:
    """The one process whose projector leads, once exactly one says so and the lease names its backend."""
    found: list[ApiProcess] = []

    async def settled() -> bool:
        said = {api.pid: (await api.health())["process"] for api in apis}
        leading = [api for api in apis if said[api.pid]["projector_leader"]]
        conn = await asyncpg.connect(database_url)
        try:
            lease = await conn.fetchrow(LEASE)
        finally:
            await conn.close()
        found[:] = leading
        return (len(leading) == 1 and lease["live"]
                and lease["holder_pid"] == said[leading[0].pid]["projector_backend_pid"])

    await eventually(settled, within, "exactly one process leading the projector, as the lease says")
    return found[0]


async def create_jobs(apis: list[ApiProcess], count: int | None = None, until: asyncio.Event | None = None,
                      into: list[str] | None = None) -> list[str]:
    """Jobs created in turn through each of `apis`: `count` of them, or (with `until`) as many as are made until
    it is set; their ids (appended to `into` as they come)."""
    created = into if into is not None else []
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=api.base, timeout=10)) for api in apis]
        for number, client, kind in zip(range(count or 10**6), cycle(clients), cycle(KINDS), strict=False):
            if until is not None and until.is_set():
                break
            reply = await client.post("/api/v1/process", headers=SERVICE,
                                      json={**JOB, "user_id": f"user-{number % 5}", "original_filename": f"{kind}.mp4"})
            assert reply.status_code == 201, reply.text
            created.append(reply.json()["job_id"])
    return created


async def the_log(conn: asyncpg.Connection) -> dict[str, list[tuple[int, str]]]:
    """Per job, (version, state) of each of its events, in version order."""
    rows = await conn.fetch("SELECT job_id::text, version, to_state FROM vjm.job_events ORDER BY job_id, version")
    log: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in rows:
        log[row["job_id"]].append((row["version"], row["to_state"]))
    return log


async def completed(conn: asyncpg.Connection, job_ids: list[str]) -> bool:
    """Every job's head event in the log says completed, and the projection has applied every event."""
    heads = await conn.fetchval(
        "SELECT count(*) FROM (SELECT DISTINCT ON (job_id) to_state FROM vjm.job_events "
        "WHERE job_id = ANY($1::uuid[]) ORDER BY job_id, version DESC) h WHERE to_state = 'completed'", job_ids)
    if heads != len(job_ids):
        return False
    applied = await conn.fetchval("SELECT events FROM vjm.projection_checkpoints WHERE name = 'main'")
    return applied == await conn.fetchval("SELECT count(*) FROM vjm.job_events")


def seen_as_feed(client: StreamClient) -> list[Change]:
    return [(e["id"], e["data"]["job_id"], e["data"]["version"], e["data"]["status"]) for e in client.events]


def check_against_the_log(events: list[Change], log: dict[str, list[tuple[int, str]]]) -> None:
    """Per job: versions strictly rise, each (version, status) is the log's, the last is the job's head."""
    per_job: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for _, job_id, version, status in events:
        per_job[job_id].append((version, status))
    assert set(per_job) == set(log)
    for job_id, seen in per_job.items():
        versions = [version for version, _ in seen]
        assert versions == sorted(set(versions)), (job_id, seen)
        assert all(log[job_id][version - 1] == (version, status) for version, status in seen), (job_id, seen)
        assert seen[-1] == log[job_id][-1], (job_id, seen, log[job_id])


async def vjm_status(database_url: str) -> dict:
    """`vjm status --json`, run as an operator runs it."""
    done = await avjm("status", "--json", "--database-url", database_url)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


async def status_names(database_url: str, leader: ApiProcess, running: list[ApiProcess]) -> dict:
    """`vjm status` names `leader`'s process as the leader and every other running process as a standby, and
    counts each process's sessions under its application_name."""
    host = socket.gethostname()
    shown = await vjm_status(database_url)
    said = (await leader.health())["process"]
    assert shown["leader"]["process"] == f"{host}:{leader.pid}"
    assert shown["leader"]["backend_pid"] == said["projector_backend_pid"]
    assert shown["leader"]["application_name"] == "vjm:projector"
    assert shown["leader"]["client_addr"] == await _our_client_addr(database_url)  # all run on this machine
    assert shown["leader"]["leading_seconds"] > 0
    roles = {c["process"]: c["role"] for c in shown["candidates"]}
    assert roles == {f"{host}:{api.pid}": "leader" if api is leader else "standby" for api in running}
    assert shown["standbys"] == len(running) - 1
    groups = {g["application_name"]: g for g in shown["sessions"]}
    assert groups["vjm:projector"]["sessions"] == len(running)
    assert said["projector_backend_pid"] in groups["vjm:projector"]["pids"]
    assert groups["vjm:feed"]["sessions"] == len(running)  # each process's one change-feed reader
    assert groups["vjm:api"]["sessions"] >= len(running)
    assert len([name for name in groups if name.startswith("vjm:worker:")]) == WORKERS
    return shown


async def test_api_processes_and_workers_on_one_database_survive_the_leaders_sigkill(database_url: str) -> None:
    deployment = Deployment(database_url)
    async with worker_spawner(database_url) as spawn, contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(deployment.close)
        for api in await asyncio.gather(*(start_api(database_url) for _ in range(API_PROCESSES))):
            await deployment.add(api)
        await asyncio.gather(*(spawn() for _ in range(WORKERS)))
        conn = await asyncpg.connect(database_url)
        stack.push_async_callback(conn.close)
        await create_jobs(deployment.running, JOBS_FIRST, into=deployment.jobs)
        for round_ in range(ROUNDS):
            await kill_the_leader(deployment, conn, replace=round_ < ROUNDS - 1)
        print(f"projector handoffs after SIGKILL: {', '.join(f'{s:.3f} s' for s in deployment.handoffs)}")
        await eventually(lambda: completed(conn, deployment.jobs), 90, "every job completed and projected")
        feed = await check_streams(deployment, conn, stack)
        await exactly_once(database_url, conn)
        shown = await status_names(database_url, await the_leader(deployment.running, database_url),
                                   deployment.running)
        assert shown["lag"]["events_behind"] == 0 and shown["lag"]["change_seq"] == len(feed)
        assert shown["lag"]["events_applied"] == await conn.fetchval("SELECT count(*) FROM vjm.job_events")


async def kill_the_leader(deployment: Deployment, conn: asyncpg.Connection, *, replace: bool) -> None:
    """SIGKILL the leading process while jobs are created through the others; the handoff within 5 s; then
    (if `replace`) a new process in its place."""
    leader = await the_leader(deployment.running, deployment.database_url)
    await eventually(lambda: _some_done(conn, deployment.jobs), 30, "a few of the jobs completed before the kill")
    await status_names(deployment.database_url, leader, deployment.running)
    survivors = [api for api in deployment.running if api is not leader]
    handed_over, before = asyncio.Event(), len(deployment.jobs)
    creating = asyncio.create_task(create_jobs(survivors, until=handed_over, into=deployment.jobs))
    await eventually(lambda: len(deployment.jobs) > before, 10, "creating jobs through the survivors")
    killed_at = time.monotonic()
    os.kill(leader.pid, signal.SIGKILL)
    new_leader, handoff = await _next_leader(survivors, killed_at)
    handed_over.set()
    await creating
    deployment.handoffs.append(handoff)
    assert handoff < HANDOFF_SECONDS, f"the projector was handed over {handoff:.2f} s after the kill"
    await leader.process.wait()
    deployment.running.remove(leader)
    deployment.killed.append(leader)
    assert await the_leader(deployment.running, deployment.database_url) is new_leader
    await create_jobs(survivors, JOBS_AFTER_EACH_HANDOFF, into=deployment.jobs)
    if replace:
        await deployment.add(await start_api(deployment.database_url))


async def check_streams(deployment: Deployment, conn: asyncpg.Connection,
                        stack: contextlib.AsyncExitStack) -> list[Change]:
    """Every running process's stream got the feed exactly; each killed one's a prefix that resumes elsewhere."""
    feed: list[Change] = [tuple(row) for row in await conn.fetch(  # type: ignore[misc]
        "SELECT seq, job_id::text, version, status FROM vjm.job_changes ORDER BY seq")]
    assert [change[0] for change in feed] == list(range(1, len(feed) + 1))  # the feed itself: gap-free
    log = await the_log(conn)
    assert set(log) == set(deployment.jobs)
    print(f"{sum(map(len, log.values()))} events of {len(log)} jobs reached the streams as {len(feed)} changes")
    for api in deployment.running:
        stream = deployment.streams[api.pid]
        await eventually(lambda stream=stream: stream.last_id == len(feed), 30,
                         lambda stream=stream, pid=api.pid: f"process {pid}'s stream at {stream.last_id} of {len(feed)}")
        assert seen_as_feed(stream) == feed  # every change once, in order, as the feed holds it
        check_against_the_log(seen_as_feed(stream), log)
    for api in deployment.killed:
        cut = deployment.streams[api.pid]
        assert cut.ended is not None and seen_as_feed(cut) == feed[:len(cut.events)]
        resumed = StreamClient(deployment.running[0].base, after=cut.last_id)
        resumed.start()
        stack.push_async_callback(resumed.close)
        await eventually(lambda resumed=resumed: resumed.last_id == len(feed), 30, "a cut stream resumed elsewhere")
        assert seen_as_feed(cut) + seen_as_feed(resumed) == feed
    return feed


async def _our_client_addr(database_url: str) -> str | None:
    """The client address the server sees for a connection from this machine (None over a Unix socket)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT host(inet_client_addr())")
    finally:
        await conn.close()


async def _serves_one(api: ApiProcess) -> bool:
    return await api.stream_count() == 1


async def _some_done(conn: asyncpg.Connection, jobs: list[str]) -> bool:
    return await conn.fetchval("SELECT count(*) FROM vjm.jobs WHERE status = 'completed' AND job_id = ANY($1::uuid[])",
                               jobs) >= WORKERS


async def _next_leader(survivors: list[ApiProcess], killed_at: float) -> tuple[ApiProcess, float]:
    """The survivor whose projector first says it leads, and the seconds from the kill until then (polled)."""
    found: list[ApiProcess] = []

    async def one_leads() -> bool:
        found[:] = [api for api, leads in zip(survivors, await asyncio.gather(*(api.leads() for api in survivors)),
                                              strict=True) if leads]
        return bool(found)

    await eventually(one_leads, 3 * HANDOFF_SECONDS, "a survivor leading the projector")
    return found[0], time.monotonic() - killed_at


async def exactly_once(database_url: str, conn: asyncpg.Connection) -> None:
    """The projection is the fold of the log and the checkpoint applied each event once."""
    logged = await conn.fetchval("SELECT count(*) FROM vjm.job_events")
    assert await conn.fetchval("SELECT events FROM vjm.projection_checkpoints WHERE name = 'main'") == logged
    assert await conn.fetchval("SELECT sum(events) FROM vjm.transition_counts") == logged
    async with connect(settings=Settings(database_url=database_url), listeners=False) as manager:
        verified = await manager.maintenance.verify_projections()
    assert verified.ok and not verified.differences and verified.events == logged and verified.behind == 0
