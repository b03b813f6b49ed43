"""`vjm up --workers 2` as an operator runs it (issue 20, item 4b): real processes, the test's database.

Two worker processes accept on one port, both with the secret the parent made up for the run;
one projector leads; a job created through either shows on event streams served by each; killing
the leading worker's process hands the projector to another process and the worker is restarted;
SIGTERM ends the parent and every worker, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path

import asyncpg
import httpx

from tests.support.http_app import JOB
from tests.support.sse import EventParser, is_comment
from tests.support.up_workers import UpWorkers, health, is_gone, pinned, shown_by_ps, up_workers
from tests.support.waiting import eventually
from videojobs.cli.up_workers import MAX_QUICK_DEATHS
from videojobs.http.auth import SERVICE_ROLE, mint_token

LEASE = "SELECT holder_pid, vjm.projector_lease_live(l) AS live FROM vjm.projector_leases l WHERE name = 'main'"


async def leaders(up: UpWorkers, pids: list[int]) -> dict[int, dict]:
    """Each worker's own word (its /healthz `process`): pid -> {projector_leader, projector_backend_pid}."""
    said = {}
    for pid in pids:
        async with pinned(up.base, pid) as client:
            said[pid] = (await client.get("/healthz")).json()["process"]
    return said


async def one_leader(up: UpWorkers, pids: list[int], database_url: str, within: float = 20) -> int:
    """The pid of the one worker that leads the projector, once exactly one says so and the lease in the
    database names its projector's backend (polled: leadership settles on the projectors' first passes)."""
    found: list[int] = []

    async def settled() -> bool:
        said = await leaders(up, pids)
        leading = [pid for pid, process in said.items() if process["projector_leader"]]
        conn = await asyncpg.connect(database_url)
        try:
            lease = await conn.fetchrow(LEASE)
        finally:
            await conn.close()
        if len(leading) == 1 and lease["live"] and lease["holder_pid"] == said[leading[0]]["projector_backend_pid"]:
            found[:] = leading
            return True
        return False

    await eventually(settled, within, "exactly one worker leading the projector, as the lease says")
    return found[0]


async def create_job(base: str, service: dict[str, str], name: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        reply = await client.post("/api/v1/process", headers=service,
                                  json={**JOB, "user_id": "alice", "original_filename": name})
    assert reply.status_code == 201, reply.text
    return reply.json()["job_id"]


async def test_both_workers_answer_with_one_secret_and_one_projector_leads(database_url: str) -> None:
    async with up_workers(database_url, 2) as up:
        assert len(set(up.pids)) == 2 and os.getpid() not in up.pids
        seen: set[int] = set()

        async def both_answered() -> bool:
            seen.add((await health(up.base))["process"]["pid"])
            return seen == set(up.pids)

        await eventually(both_answered, 20, lambda: f"answers from both workers {up.pids} (seen {seen})")
        asked = {pid: 2 + i for i, pid in enumerate(up.pids)}  # a different number of requests to each
        for pid in up.pids:  # the service token the parent printed works in each process: one secret
            async with pinned(up.base, pid) as client:
                for _ in range(asked[pid]):
                    teams = await client.get("/api/v1/teams", headers=up.service)
                    assert teams.status_code == 200, teams.text
        for pid in up.pids:  # a scrape of either worker counts both workers' requests, and shows both pools
            async with pinned(up.base, pid) as client:
                text = (await client.get("/metrics")).text
            assert metric(text, TEAMS_REQUESTS) == sum(asked.values())
            assert pool_pids(text) == set(up.pids)
        await one_leader(up, up.pids, database_url)
        assert sum("vjm up: serving" in line for line in up.lines) == 1
        secret = up.printed("user tokens: VJM_JWT_SECRET=").split("VJM_JWT_SECRET=")[1].split()[0]
        for pid in up.pids:  # the made-up secret reached the workers on their stdin, not argv or environment
            assert not shown_by_ps(pid, secret)
        code = await up.stop()
    assert code == 0, (up.lines, up.stderr[-20:])
    assert up.lines[-1] == "vjm up: stopped" and not any("Traceback" in line for line in up.stderr)
    assert all(is_gone(pid) for pid in up.pids)
    assert [line for line in up.lines if secret in line] == [up.printed("user tokens:")]  # printed once, there
    assert not any(secret in line for line in up.stderr)


async def follow_stream(client: httpx.AsyncClient, service: dict[str, str], opened: asyncio.Event,
                        seen: set[str]) -> None:
    """Follow the event stream on `client`, adding the job id of every change to `seen` (until cancelled)."""
    parser = EventParser()
    async with client.stream("GET", "/api/v1/events/stream", headers=service) as reply:
        assert reply.status_code == 200
        opened.set()
        async for line in reply.aiter_lines():
            event = None if is_comment(line) else parser.feed(line)
            if event is not None:
                seen.add(event["data"]["job_id"])


def pool_pids(text: str) -> set[int]:
    """The worker pids a /metrics exposition shows pools for."""
    return {int(p) for p in re.findall(r'^vjm_db_pool_connections\{.*\bpid="(\d+)"', text, re.M)}


def metric(text: str, series: str) -> float:
    """The value of one series (its name and labels as printed) in a Prometheus text."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert found is not None, f"{series} not in {text[:2000]}"
    return float(found.group(1))


TEAMS_REQUESTS = 'vjm_http_request_duration_seconds_count{method="GET",route="/api/v1/teams",status="200"}'


async def open_streams(base: str, pid: int) -> float:
    """The open event streams of every worker, as worker `pid`'s /metrics sums them."""
    async with pinned(base, pid) as client:
        return metric((await client.get("/metrics")).text, "vjm_sse_clients")


async def test_a_job_created_through_either_worker_shows_on_streams_served_by_each(database_url: str,
                                                                                  tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    async with up_workers(database_url, 2, "--secret-file", str(secret_file)) as up, \
            contextlib.AsyncExitStack() as stack:
        assert "made now, mode 0600" in up.printed("identity secret is in")
        # A token signed with the file's secret works in every worker: every one of them uses it.
        up.service_token = mint_token(secret_file.read_text().strip(), sub="streams", role=SERVICE_ROLE,
                                      audience="authenticated")
        seen: dict[int, set[str]] = {pid: set() for pid in up.pids}
        streams = []
        for pid in up.pids:  # one stream on a connection each worker accepted
            client, opened = await stack.enter_async_context(pinned(up.base, pid)), asyncio.Event()
            stream = asyncio.create_task(follow_stream(client, up.service, opened, seen[pid]))
            stack.callback(stream.cancel)
            streams.append(stream)
            await asyncio.wait_for(opened.wait(), 10)
        for pid in up.pids:  # one stream each, and each worker's /metrics sums both
            await eventually(lambda pid=pid: _all_streams(up.base, pid, len(streams)), 20,
                             f"worker {pid} counting {len(streams)} open streams")
        created = set()
        for pid in up.pids:  # and one job created through each worker
            async with pinned(up.base, pid) as client:
                reply = await client.post("/api/v1/process", headers=up.service,
                                          json={**JOB, "user_id": "alice", "original_filename": f"{pid}.mp4"})
            assert reply.status_code == 201, reply.text
            created.add(reply.json()["job_id"])
        await eventually(lambda: all(created <= ids for ids in seen.values()), 20,
                         lambda: f"both jobs {created} on both streams {seen}")
        code = await up.stop()  # with both streams open: each worker ends its streams, then stops
        done, _ = await asyncio.wait(streams, timeout=10)
        assert len(done) == 2
    assert code == 0, (up.lines, up.stderr[-20:])
    assert not any("killing it" in line or "did not stop cleanly" in line for line in up.lines)


async def _all_streams(base: str, pid: int, opened: int) -> bool:
    return await open_streams(base, pid) == opened


async def test_killing_the_leading_worker_hands_the_projector_to_another_process(database_url: str) -> None:
    async with up_workers(database_url, 2) as up:
        leader = await one_leader(up, up.pids, database_url)
        async with pinned(up.base, leader) as client:  # requests only the leader answers: its counts
            for _ in range(3):
                assert (await client.get("/api/v1/teams", headers=up.service)).status_code == 200
        os.kill(leader, signal.SIGKILL)
        exited = await up.line_with(f"(pid {leader}) exited (killed by SIGKILL)")
        assert "restarting it" in exited
        job_id = await create_job(up.base, up.service, "after-the-kill.mp4")
        conn = await asyncpg.connect(database_url)
        try:
            async def projected() -> bool:
                return await conn.fetchval("SELECT count(*) FROM vjm.jobs WHERE job_id = $1", job_id) == 1
            await eventually(projected, 20, "the job projected by the new leader")
        finally:
            await conn.close()
        restarted = int(re.search(r"\(pid (\d+)\) restarted", await up.line_with("restarted")).group(1))
        survivors = [pid for pid in up.pids if pid != leader] + [restarted]
        new_leader = await one_leader(up, survivors, database_url)
        assert new_leader != leader and is_gone(leader)
        async with pinned(up.base, restarted) as client:  # the dead worker's requests still count; its pool is gone
            text = (await client.get("/metrics")).text
        assert metric(text, TEAMS_REQUESTS) == 3
        assert leader not in pool_pids(text)
        assert await up.stop() == 0, (up.lines, up.stderr[-20:])
    assert all(is_gone(pid) for pid in survivors)


async def test_workers_stop_on_their_own_when_the_parent_is_killed(database_url: str) -> None:
    async with up_workers(database_url, 2) as up:
        up.process.kill()  # no SIGTERM to pass on: each worker sees its stdin close
        assert await up.process.wait() == -signal.SIGKILL
        await eventually(lambda: all(is_gone(pid) for pid in up.pids), 20, f"workers {up.pids} gone")


async def test_a_worker_that_keeps_dying_soon_after_its_start_is_given_up_on_exit_1(database_url: str) -> None:
    async with up_workers(database_url, 2) as up:
        victim = up.pids[1]
        for death in range(1, MAX_QUICK_DEATHS + 1):
            os.kill(victim, signal.SIGKILL)
            if death == MAX_QUICK_DEATHS:
                break
            await eventually(lambda death=death: len(up.printed_all(") restarted")) == death, 30,
                             lambda death=death: f"restart {death}: {up.lines[-3:]}")
            found = re.search(r"\(pid (\d+)\) restarted", up.printed_all(") restarted")[-1])
            assert found is not None
            victim = int(found.group(1))
        async with asyncio.timeout(40):
            code = await up.process.wait()
    assert code == 1, (up.lines, up.stderr[-20:])
    assert "giving up" in up.printed(f"(pid {victim}) exited (killed by SIGKILL), {MAX_QUICK_DEATHS} times")
    assert up.lines[-1] == "vjm up: stopped" and is_gone(up.pids[0]) and is_gone(victim)
