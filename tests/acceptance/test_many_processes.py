"""Many processes on one database (issue 22, item 2): three separate `vjm up` processes (each on its own port,
each with its own projector candidate, stuck detector and change-feed reader) and four `vjm worker`
processes share one database, real processes all.

A batch of jobs is created through all three APIs and the workers take every one to the end. An event
stream follows each API process from the start. Halfway through, the process whose projector leads is
killed with SIGKILL: another process's projector takes the lease within 5 s (measured from the kill to
the moment a survivor's /healthz says it leads, polled with a deadline), the second half of the jobs goes
through the survivors, and afterwards

- every stream on a surviving process received exactly the change feed: every seq once, in order, each
  change as the feed holds it; per job, versions only go up, each (version, status) is the log's event of
  that version, and the last one is the job's head in the log;
- the stream of the killed process received a prefix of the feed, and resuming it on a survivor with its
  last id gives the rest, nothing twice;
- the projection equals the fold of the log (`verify`), and the checkpoint counted every event of the
  log exactly once: nothing lost, nothing applied twice;
- `vjm status` names the real leader before the kill and the new one after it.
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
from itertools import cycle

import asyncpg
import httpx

from tests.support.api_processes import ApiProcess, StreamClient, api_processes
from tests.support.cli import avjm
from tests.support.http_app import JOB
from tests.support.tokens import SERVICE
from tests.support.waiting import eventually
from tests.support.workers import worker_spawner
from videojobs import Settings, connect

API_PROCESSES, WORKERS = 3, 4
JOBS_BEFORE_THE_KILL, JOBS_AFTER_THE_KILL = 24, 24
KINDS = ("ok-0", "progress-3", "slow-0.2")  # what tests.support.worker_handlers does with each job
HANDOFF_SECONDS = 5.0
LEASE = "SELECT holder_pid, vjm.projector_lease_live(l) AS live FROM vjm.projector_leases l WHERE name = 'main'"


async def the_leader(apis: list[ApiProcess], database_url: str, within: float = 30) -> ApiProcess:
    """The one process whose projector leads, once exactly one says so and the lease names its backend."""
    found: list[ApiProcess] = []

    async def settled() -> bool:
        said = {api.pid: (await api.health())["process"] for api in apis if api.alive}
        leading = [api for api in apis if api.alive and said[api.pid]["projector_leader"]]
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


async def create_jobs(apis: list[ApiProcess], count: int) -> list[str]:
    """`count` jobs, created in turn through each of `apis`; their ids."""
    created = []
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=api.base, timeout=10)) for api in apis]
        for number, client, kind in zip(range(count), cycle(clients), cycle(KINDS), strict=False):
            reply = await client.post("/api/v1/process", headers=SERVICE,
                                      json={**JOB, "user_id": f"user-{number % 5}",
                                            "original_filename": f"{kind}.mp4"})
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


def seen_as_feed(client: StreamClient) -> list[tuple[int, str, int, str]]:
    return [(e["id"], e["data"]["job_id"], e["data"]["version"], e["data"]["status"]) for e in client.events]


def check_against_the_log(events: list[tuple[int, str, int, str]], log: dict[str, list[tuple[int, str]]]) -> None:
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


async def _status_names(database_url: str, leader: ApiProcess, running: list[ApiProcess]) -> dict:
    """`vjm status` names `leader`'s process as the leader and every other running process as a standby, and
    counts each process's sessions under its application_name."""
    host = socket.gethostname()
    shown = await vjm_status(database_url)
    said = (await leader.health())["process"]
    assert shown["leader"]["process"] == f"{host}:{leader.pid}"
    assert shown["leader"]["backend_pid"] == said["projector_backend_pid"]
    assert shown["leader"]["application_name"] == "vjm:projector"
    assert shown["leader"]["client_addr"] == "127.0.0.1" and shown["leader"]["leading_seconds"] > 0
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


async def test_three_api_processes_four_workers_and_the_leader_killed(database_url: str) -> None:
    async with api_processes(database_url, API_PROCESSES) as apis, worker_spawner(database_url) as spawn, \
            contextlib.AsyncExitStack() as stack:
        leader = await the_leader(apis, database_url)
        streams = {api.pid: StreamClient(api.base) for api in apis}
        for stream in streams.values():
            stream.start()
            stack.push_async_callback(stream.close)
            await asyncio.wait_for(stream.opened.wait(), 20)
        for api in apis:  # each process's feed reader serves its stream before anything happens
            await eventually(lambda api=api: _serves_one(api), 20, f"process {api.pid} serving its stream")
        await asyncio.gather(*(spawn() for _ in range(WORKERS)))
        first = await create_jobs(apis, JOBS_BEFORE_THE_KILL)
        conn = await asyncpg.connect(database_url)
        stack.push_async_callback(conn.close)
        await eventually(lambda: _some_done(conn), 30, "a few jobs completed before the kill")
        await _status_names(database_url, leader, apis)

        survivors = [api for api in apis if api is not leader]
        killed_at = time.monotonic()
        os.kill(leader.pid, signal.SIGKILL)
        new_leader, handoff = await _next_leader(survivors, killed_at)
        print(f"projector handoff after SIGKILL: {handoff:.3f} s")
        assert handoff < HANDOFF_SECONDS, f"the projector was handed over after {handoff:.2f} s"
        await leader.process.wait()

        second = await create_jobs(survivors, JOBS_AFTER_THE_KILL)
        await eventually(lambda: completed(conn, first + second), 90, "every job completed and projected")
        assert await the_leader(survivors, database_url) is new_leader

        feed = [tuple(row) for row in await conn.fetch(
            "SELECT seq, job_id::text, version, status FROM vjm.job_changes ORDER BY seq")]
        assert [row[0] for row in feed] == list(range(1, len(feed) + 1))  # the feed itself: gap-free
        for api in survivors:
            await eventually(lambda api=api: streams[api.pid].last_id == len(feed), 30,
                             lambda api=api: f"process {api.pid}'s stream at {streams[api.pid].last_id}/{len(feed)}")
        log = await the_log(conn)
        assert set(log) == set(first + second)
        for api in survivors:
            assert seen_as_feed(streams[api.pid]) == feed  # every change once, in order, as the feed holds it
            check_against_the_log(seen_as_feed(streams[api.pid]), log)

        cut = streams[leader.pid]
        assert cut.ended is not None and seen_as_feed(cut) == feed[:len(cut.events)]
        resumed = StreamClient(new_leader.base, after=cut.last_id)
        resumed.start()
        stack.push_async_callback(resumed.close)
        await eventually(lambda: resumed.last_id == len(feed), 30, "the cut stream resumed on a survivor")
        assert seen_as_feed(cut) + seen_as_feed(resumed) == feed

        await _exactly_once(database_url, conn)
        shown = await _status_names(database_url, new_leader, survivors)
        assert shown["lag"]["events_behind"] == 0
        assert shown["lag"]["events_applied"] == await conn.fetchval("SELECT count(*) FROM vjm.job_events")
        assert shown["lag"]["change_seq"] == len(feed)


async def _serves_one(api: ApiProcess) -> bool:
    return await api.stream_count() == 1


async def _some_done(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT count(*) FROM vjm.jobs WHERE status = 'completed'") >= WORKERS


async def _next_leader(survivors: list[ApiProcess], killed_at: float) -> tuple[ApiProcess, float]:
    """The survivor whose projector first says it leads, and the seconds from the kill until then (polled)."""
    found: list[ApiProcess] = []

    async def one_leads() -> bool:
        found[:] = [api for api, leads in zip(survivors, await asyncio.gather(*(api.leads() for api in survivors)),
                                              strict=True) if leads]
        return bool(found)

    await eventually(one_leads, 3 * HANDOFF_SECONDS, "a survivor leading the projector")
    return found[0], time.monotonic() - killed_at


async def _exactly_once(database_url: str, conn: asyncpg.Connection) -> None:
    """The projection is the fold of the log and the checkpoint applied each event once."""
    logged = await conn.fetchval("SELECT count(*) FROM vjm.job_events")
    assert await conn.fetchval("SELECT events FROM vjm.projection_checkpoints WHERE name = 'main'") == logged
    assert await conn.fetchval("SELECT sum(events) FROM vjm.transition_counts") == logged
    async with connect(settings=Settings(database_url=database_url), listeners=False) as manager:
        verified = await manager.maintenance.verify_projections()
    assert verified.ok and not verified.differences and verified.events == logged and verified.behind == 0
