"""Many SSE streams on one app share one change-feed reader (listeners/feed_hub.py), over real sockets:
bounded database connections, resume across catch-up and live, slow clients, tenants, a killed
connection, shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterable

import asyncpg
import h11
import httpx

from store.identity import acting_as
from tests.support.factories import create_data
from tests.support.http_app import FAST, http_settings
from tests.support.pools import role_pools as role_pools_on
from tests.support.projections import wait_in_change_feed
from tests.support.servers import serve
from tests.support.sse import EventParser, is_comment
from tests.support.tokens import SERVICE, bearer
from tests.support.waiting import wait_until
from videojobs.http import HttpOptions, create_app

STREAM = "/api/v1/events/stream"


class Stream:
    """One SSE client running in a task: its job_change events, its comment lines, whether it ended."""

    def __init__(self, client: httpx.AsyncClient, headers: dict, params: dict | None = None):
        self.events: list[dict] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.ended = False
        self.task = asyncio.create_task(self._run(client, headers, params))

    async def _run(self, client, headers, params) -> None:
        parser = EventParser()
        async with client.stream("GET", STREAM, headers=headers, params=params) as response:
            self.status = response.status_code
            async for line in response.aiter_lines():
                if is_comment(line):
                    self.comments.append(line)
                elif event := parser.feed(line):
                    self.events.append(event)
        self.ended = True

    @property
    def ids(self) -> list[int]:
        return [e["id"] for e in self.events]

    @property
    def job_ids(self) -> list[str]:
        return [e["data"]["job_id"] for e in self.events]

    async def until(self, seq: int, deadline_s: float = 20) -> None:
        await wait_until(lambda: (self.ids and self.ids[-1] >= seq) or self.task.done(), deadline_s=deadline_s,
                         what=f"the stream to reach seq {seq}")
        if self.task.done():
            self.task.result()

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def client_for(url: str, streams: int = 10) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(15, read=None))


def job(user_id: str, team_id=None, name: str = "clip.mp4") -> dict:
    return create_data(user_id=user_id, team_id=team_id, original_filename=name)


async def projected(pools, jobs: Iterable) -> int:
    """Wait until the change feed holds every one of these jobs; the newest seq."""
    return await wait_in_change_feed(pools.service, jobs)


async def feed_as(pools, user_id: str | None) -> list[int]:
    """Every seq `user_id` may read under RLS now (None: everything)."""
    if user_id is None:
        return [r[0] for r in await pools.service.fetch("SELECT seq FROM vjm.job_changes ORDER BY seq")]
    async with acting_as(pools.users, user_id=user_id) as conn:
        return [r[0] for r in await conn.fetch("SELECT seq FROM vjm.job_changes ORDER BY seq")]


async def database_connections(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


def hub_of(app):
    return app.state.vjm.feed_hub


async def test_120_streams_share_a_bounded_number_of_database_connections(app_with_listeners, live_server_with_listeners, manager_with_listeners,
                                                                         database_url) -> None:
    state = app_with_listeners.state.vjm
    who = ["alice"] * 40 + ["bob"] * 40 + [None] * 40
    async with client_for(live_server_with_listeners, len(who)) as client:
        streams = [Stream(client, SERVICE if sub is None else bearer(sub)) for sub in who]
        await wait_until(lambda: hub_of(app_with_listeners).live_subscribers == len(who), deadline_s=30, what="120 live streams")
        connections = await database_connections(database_url)
        # Two pools (service and users, pool_size each), the projector, the read-your-writes watcher and the
        # hub: a bound that does not depend on the number of streams.
        assert connections <= 2 * state.settings.pool_size + 4 < len(who), connections
        metrics = (await client.get("/metrics")).text
        assert "vjm_sse_clients 120.0" in metrics and "vjm_sse_feed_connected 1.0" in metrics
        made = await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("alice")])
        async with role_pools_on(database_url, max_size=1) as pools:  # opened after the count above
            await projected(pools, made)
        await wait_until(lambda: all(len(s.events) == (2, 1, 3)[i // 40] for i, s in enumerate(streams)),
                         what="every stream to get its changes")
        for i, stream in enumerate(streams):
            expected = ([made[0], made[2]], [made[1]], made)[i // 40]
            assert stream.job_ids == [str(j.job_id) for j in expected], (i, stream.job_ids)
        assert await database_connections(database_url) <= 2 * state.settings.pool_size + 4
        for stream in streams:
            await stream.stop()
        await wait_until(lambda: state.metrics.sse_clients._value.get() == 0 and hub_of(app_with_listeners).subscribers == 0,
                         what="the streams to be counted out")


async def test_resume_with_last_event_id_across_catch_up_and_live_has_no_gap_and_no_duplicate(
        live_server_with_listeners, manager_with_listeners, role_pools) -> None:
    stop, made = asyncio.Event(), []

    async def writer() -> None:
        while not stop.is_set():
            made.extend(await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("alice")]))

    writing = asyncio.create_task(writer())
    seen: list[int] = []
    try:
        async with client_for(live_server_with_listeners) as client:
            for take in (3, 1, 7, 2, 11, 5):  # disconnect after `take` events, reconnect from the last one
                headers = bearer("alice") if not seen else {**bearer("alice"), "Last-Event-ID": str(seen[-1])}
                stream = Stream(client, headers)
                await wait_until(lambda s=stream, n=take: len(s.events) >= n, what=f"{take} events")
                await stream.stop()
                seen += stream.ids
    finally:
        stop.set()
        await writing
    await projected(role_pools, made)
    truth = await feed_as(role_pools, "alice")
    async with client_for(live_server_with_listeners) as client:
        last = Stream(client, {**bearer("alice"), "Last-Event-ID": str(seen[-1])})
        await last.until(truth[-1])
        await last.stop()
    seen += last.ids
    duplicates = sorted({s for s in seen if seen.count(s) > 1})
    assert seen == truth, f"across reconnects: duplicates {duplicates}, missing {sorted(set(truth) - set(seen))}, " \
                          f"extra {sorted(set(seen) - set(truth))}"


def _slow_socket(url: str) -> socket.socket:
    """A client socket with a tiny receive buffer, so that a server writing to it blocks soon."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    return sock, (host, int(port))


async def _open_unread_stream(url: str, app) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Alice's stream on a socket the test does not read from (yet), once the hub has it beside `fast`."""
    sock, address = _slow_socket(url)
    await asyncio.get_running_loop().sock_connect(sock, address)
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    writer.write(f"GET {STREAM} HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer('alice')['Authorization']}\r\n"
                 "Connection: close\r\n\r\n".encode())
    await writer.drain()
    await wait_until(lambda: hub_of(app) is not None and hub_of(app).live_subscribers == 2,
                     what="both streams live")
    return reader, writer


async def _write_until_overflow(manager, pools, app, fast: Stream) -> None:
    """Create jobs until the unread stream's socket is full and its buffer overflows (bounded)."""
    made: list = []
    for _ in range(20):
        made += await manager.bulk_create_jobs([job("alice") for _ in range(100)])
        await fast.until(await projected(pools, made))
        if hub_of(app).overflows:
            break
    assert hub_of(app).overflows == 1, "the unread stream never fell behind"


async def _read_to_end(reader: asyncio.StreamReader) -> tuple[list[dict], list[str]]:
    """Everything the server sends until it closes: (job_change events, comment lines)."""
    parser = h11.Connection(h11.CLIENT)
    parser.send(h11.Request(method="GET", target=STREAM, headers=[("Host", "x")]))
    body = b""
    async with asyncio.timeout(30):
        while True:
            parser.receive_data(await reader.read(65536))
            event = parser.next_event()
            while event not in (h11.NEED_DATA, h11.PAUSED) and not isinstance(event, h11.EndOfMessage):
                if isinstance(event, h11.Data):
                    body += event.data
                event = parser.next_event()
            if isinstance(event, h11.EndOfMessage):
                break
    events, comments = [], []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        comments += [ln for ln in lines if ln.startswith(":")]
        data = [ln[5:].strip() for ln in lines if ln.startswith("data:")]
        if data:
            events.append(json.loads(data[0]))
    return events, comments


async def test_a_slow_client_is_ended_and_the_other_streams_keep_flowing(manager_with_listeners, database_url, role_pools) -> None:
    options = HttpOptions(sse_heartbeat_seconds=60, sse_poll_seconds=0.2, sse_queue_size=8)
    app = create_app(manager_with_listeners, settings=http_settings(database_url), options=options)
    async with serve(app, send_buffer=4096) as url, client_for(url) as client:
        fast = Stream(client, bearer("alice"))
        reader, writer = await _open_unread_stream(url, app)
        await _write_until_overflow(manager_with_listeners, role_pools, app, fast)
        assert hub_of(app).live_subscribers == 1 and not fast.task.done()
        truth = await feed_as(role_pools, "alice")
        assert fast.ids == truth, "the fast stream lost or repeated something"
        slow_events, comments = await _read_to_end(reader)  # now read: what was buffered, a note, the end
        writer.close()
        slow_ids = [e["seq"] for e in slow_events]
        assert slow_ids == truth[:len(slow_ids)] and len(slow_ids) < len(truth)
        assert any("reconnect with Last-Event-ID" in c for c in comments)
        resumed = Stream(client, {**bearer("alice"), "Last-Event-ID": str(slow_ids[-1])})
        await resumed.until(truth[-1])
        assert slow_ids + resumed.ids == truth
        assert app.state.vjm.metrics.sse_overflows._value.get() == 1
        for stream in (fast, resumed):
            await stream.stop()


async def test_a_client_that_never_reads_is_cut_off_by_the_send_timeout(manager_with_listeners, database_url, role_pools) -> None:
    options = HttpOptions(sse_heartbeat_seconds=60, sse_poll_seconds=0.2, sse_queue_size=8,
                          sse_send_timeout_seconds=1.0)
    app = create_app(manager_with_listeners, settings=http_settings(database_url), options=options)
    clients = app.state.vjm.metrics.sse_clients._value
    async with serve(app, send_buffer=4096) as url, client_for(url) as client:
        fast = Stream(client, bearer("alice"))
        _, writer = await _open_unread_stream(url, app)
        await _write_until_overflow(manager_with_listeners, role_pools, app, fast)
        # Its response is stuck writing to a full socket; without a send timeout it stays open forever.
        await wait_until(lambda: clients.get() == 1, what="the silent stream to be ended by the send timeout")
        more = await manager_with_listeners.bulk_create_jobs([job("alice")])
        await fast.until(await projected(role_pools, more))
        assert fast.ids == await feed_as(role_pools, "alice") and not fast.task.done()
        writer.close()
        await fast.stop()


async def test_streams_carry_only_the_users_own_and_team_jobs_and_team_removal_applies(live_server_with_listeners, app_with_listeners,
                                                                                    manager_with_listeners, role_pools) -> None:
    team = await manager_with_listeners.teams.create("crew", owner_id="alice")
    await manager_with_listeners.teams.add_member(team.team_id, "bob")
    async with client_for(live_server_with_listeners) as client:
        streams = {sub: Stream(client, bearer(sub)) for sub in ("alice", "bob", "carol")}
        streams["service"] = Stream(client, SERVICE)
        await wait_until(lambda: hub_of(app_with_listeners) is not None and hub_of(app_with_listeners).live_subscribers == 4,
                         what="four live streams")
        before = await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("carol"),
                                                 job("alice", team.team_id, "team-1.mp4")])
        await streams["service"].until(await projected(role_pools, before))
        await wait_until(lambda: len(streams["bob"].events) == 2, what="bob's two changes")
        assert await manager_with_listeners.teams.remove_member(team.team_id, "bob")
        after = await manager_with_listeners.bulk_create_jobs([job("alice", team.team_id, "team-2.mp4")])
        marker = await manager_with_listeners.bulk_create_jobs([job("bob", name="marker.mp4")])
        top = await projected(role_pools, after + marker)
        await streams["service"].until(top)
        await wait_until(lambda: streams["bob"].job_ids[-1:] == [str(marker[0].job_id)], what="bob's marker")
        await wait_until(lambda: len(streams["alice"].events) == 3, what="alice's three changes")
        ids = {sub: stream.job_ids for sub, stream in streams.items()}
        for stream in streams.values():
            await stream.stop()
    assert sorted(ids["bob"][:2]) == sorted([str(before[1].job_id), str(before[3].job_id)])
    assert ids["bob"][2:] == [str(marker[0].job_id)], "bob kept receiving the team's jobs after leaving it"
    assert sorted(ids["alice"]) == sorted(str(j.job_id) for j in (before[0], before[3], after[0]))
    assert ids["carol"] == [str(before[2].job_id)]
    assert len(ids["service"]) == 6


async def test_the_streams_survive_a_terminated_feed_connection(live_server_with_listeners, app_with_listeners, manager_with_listeners, pool, role_pools) -> None:
    async with client_for(live_server_with_listeners) as client:
        stream = Stream(client, bearer("alice"))
        await stream.until(await projected(role_pools, await manager_with_listeners.bulk_create_jobs([job("alice")])))
        hub = hub_of(app_with_listeners)
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", hub._listening.connection.get_server_pid())
        await wait_until(lambda: hub.reconnects == 1 and hub.connected, what="the hub to reconnect")
        more = await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("alice")])
        await stream.until(await projected(role_pools, more))
        assert stream.ids == await feed_as(role_pools, "alice") and not stream.task.done()
        metrics = (await client.get("/metrics")).text
        assert "vjm_sse_feed_reconnects 1.0" in metrics and "vjm_sse_feed_connected 1.0" in metrics
        await stream.stop()


async def test_the_end_of_the_lifespan_closes_the_hub_and_ends_every_stream(manager, database_url, role_pools) -> None:
    app = create_app(manager, settings=http_settings(database_url), options=FAST)
    state = app.state.vjm
    async with serve(app, lifespan="off") as url, client_for(url) as client:
        async with app.router.lifespan_context(app):
            hub = state.feed_hub
            await wait_until(lambda: hub.connected, what="the hub to connect")
            pid = hub._listening.connection.get_server_pid()
            streams = [Stream(client, bearer(sub)) for sub in ("alice", "bob")] + [Stream(client, SERVICE)]
            await wait_until(lambda: hub.live_subscribers == 3, what="three live streams")
            assert state.metrics.sse_clients._value.get() == 3
        await wait_until(lambda: all(s.ended for s in streams), what="every stream to end")
        assert all(s.status == 200 for s in streams)
        assert state.feed_hub is None and hub.closed and not hub.connected
        assert state.metrics.sse_clients._value.get() == 0
        assert not await role_pools.service.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)


async def test_a_stream_resumed_near_the_head_gets_the_rest_then_live_changes(live_server_with_listeners, manager_with_listeners, role_pools) -> None:
    made = await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("alice")])
    top = await projected(role_pools, made)
    async with client_for(live_server_with_listeners) as client:
        stream = Stream(client, {**bearer("alice"), "Last-Event-ID": str(top - 1)})
        await stream.until(top)
        later = await manager_with_listeners.bulk_create_jobs([job("alice")])
        await stream.until(await projected(role_pools, later))
        await stream.stop()
    assert stream.ids == [s for s in await feed_as(role_pools, "alice") if s >= top]
