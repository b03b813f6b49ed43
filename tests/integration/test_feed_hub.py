"""The shared change-feed reader (listeners/feed_hub.py): fan-out, resume, slow subscribers,
tenant isolation decided by the database, a killed connection, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from listeners.feed_hub import CLOSED, OVERFLOW, SHUTDOWN, ChangeFeedHub, FeedHubConfig, FeedSubscription
from store.identity import acting_as
from tests.support.factories import create_data
from tests.support.projections import wait_in_change_feed
from tests.support.waiting import eventually

TEAM_JOB = {"original_filename": "team.mp4"}


def job(user_id: str, team_id=None, **overrides) -> dict:
    """A bulk_create_jobs item."""
    return {**create_data(**overrides), "user_id": user_id, "team_id": team_id}


@contextlib.asynccontextmanager
async def running_hub(manager, pools, **config) -> AsyncIterator[ChangeFeedHub]:
    """A started hub on the manager's database and pools, ready (it knows its position), closed at the end."""
    hub = ChangeFeedHub(FeedHubConfig(database_url=manager.database_url, poll_interval=0.2, **config),
                        service_pool=pools.service, user_pool=pools.users)
    async with hub:
        async with asyncio.timeout(10):
            await hub.wait_ready()
        yield hub


class Reader:
    """Iterates a subscription in a task, collecting seqs (and the changes)."""

    def __init__(self, subscription: FeedSubscription):
        self.subscription = subscription
        self.changes: list = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for change in self.subscription:
            self.changes.append(change)

    @property
    def seqs(self) -> list[int]:
        return [c.seq for c in self.changes]

    async def until(self, seq: int, within: float = 15) -> None:
        await eventually(lambda: bool(self.changes) and self.changes[-1].seq >= seq or self.task.done(), within)

    async def stop(self) -> None:
        await self.subscription.close()
        await asyncio.wait_for(self.task, 10)


async def feed_as(pools, user_id: str | None) -> list[int]:
    """The truth: every feed seq `user_id` may read under RLS (None: a service, everything)."""
    if user_id is None:
        return [r[0] for r in await pools.service.fetch("SELECT seq FROM vjm.job_changes ORDER BY seq")]
    async with acting_as(pools.users, user_id=user_id) as conn:
        return [r[0] for r in await conn.fetch("SELECT seq FROM vjm.job_changes ORDER BY seq")]


async def last_seq(pools) -> int:
    return await pools.service.fetchval("SELECT coalesce(max(seq), 0) FROM vjm.job_changes")


async def settled(hub: ChangeFeedHub, readers, top: int) -> None:
    """Wait until the hub has dispatched up to `top` and every reader has taken all it was given."""
    await eventually(lambda: hub.position is not None and hub.position >= top
                     and all(r.subscription in hub._live and r.subscription.buffered == 0 for r in readers),
                     within=15)


async def grown(pools, seq: int) -> bool:
    return await last_seq(pools) > seq


async def projected(pools, jobs: list) -> int:
    """Wait until the feed holds a change for each of these jobs; the newest seq."""
    return await wait_in_change_feed(pools.service, jobs)


async def test_the_visibility_function_answers_for_the_callers_own_identity_only(manager_with_listeners, role_pools) -> None:
    team = await manager_with_listeners.teams.create("studio", owner_id="alice")
    await manager_with_listeners.teams.add_member(team.team_id, "bob")
    made = await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("carol"), job("alice", team.team_id)])
    top = await projected(role_pools, made)
    seqs = list(range(1, top + 1))
    for viewer in ("alice", "bob", "carol", "nobody"):
        async with acting_as(role_pools.users, user_id=viewer) as conn:
            seen = sorted(r[0] for r in await conn.fetch("SELECT * FROM vjm.job_changes_visible($1)", seqs))
        assert seen == await feed_as(role_pools, viewer)
    assert await feed_as(role_pools, "nobody") == []
    async with acting_as(role_pools.users, user_id="dave") as conn:  # no way to name another user (issue 15)
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await conn.fetch("SELECT * FROM vjm.job_changes_visible($1, $2)", seqs, ["alice"])
    async with role_pools.service.acquire() as conn:  # a service role would see every row: refused
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM vjm.job_changes_visible($1)", seqs)


async def test_every_subscriber_gets_its_changes_once_in_order(manager_with_listeners, role_pools) -> None:
    team = await manager_with_listeners.teams.create("studio", owner_id="alice")
    await manager_with_listeners.teams.add_member(team.team_id, "bob")
    async with running_hub(manager_with_listeners, role_pools) as hub:
        readers = {who: Reader(hub.subscribe(user_id=who)) for who in ("alice", "bob", "carol", None)}
        made = []
        for round_ in range(5):
            made += await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("carol"),
                                                    job("alice", team.team_id), job("bob", team.team_id)])
            if round_ == 2:
                await manager_with_listeners.cancel_job(made[0].job_id)
        top = await projected(role_pools, made)
        await settled(hub, readers.values(), top)
        for who, reader in readers.items():
            assert reader.seqs == await feed_as(role_pools, who), who
        assert top == readers[None].seqs[-1]
        assert hub.live_subscribers == 4
        for reader in readers.values():
            await reader.stop()
        assert hub.subscribers == 0


async def test_joining_while_the_hub_moves_has_no_gap_and_no_duplicate(manager_with_listeners, role_pools) -> None:
    """Subscribers resume from many points while writes run, so some join mid-dispatch."""
    async with running_hub(manager_with_listeners, role_pools, page_size=7) as hub:
        stop = asyncio.Event()

        async def writer() -> None:
            while not stop.is_set():
                await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("alice")])

        writing = asyncio.create_task(writer())
        readers: list[tuple[str | None, int, Reader]] = []
        try:
            for i in range(24):
                top = await last_seq(role_pools)
                after = max(0, top - (i % 6) * 5)  # behind the hub by 0..25 rows: catch-up, then live
                who = ("alice", "bob", None)[i % 3]
                readers.append((who, after, Reader(hub.subscribe(after=after, user_id=who))))
                await eventually(lambda top=top: grown(role_pools, top), within=10)
        finally:
            stop.set()
            await writing
        final = await last_seq(role_pools)
        for who, after, reader in readers:
            truth = [s for s in await feed_as(role_pools, who) if s > after]
            await reader.until(truth[-1])
        await settled(hub, [r for _, _, r in readers], final)
        for who, after, reader in readers:
            assert reader.seqs == [s for s in await feed_as(role_pools, who) if s > after], (who, after)
            await reader.stop()


async def test_a_subscriber_the_hub_overtakes_while_it_catches_up_joins_without_gap(manager_with_listeners, role_pools) -> None:
    top = await projected(role_pools, await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("alice")]))
    async with running_hub(manager_with_listeners, role_pools) as hub:
        subscription = hub.subscribe(after=0, user_id="alice")
        changes = aiter(subscription)
        got = [(await asyncio.wait_for(anext(changes), 10)).seq]  # from the database; paused mid-catch-up
        overtaking = await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("alice")])
        moved = await projected(role_pools, overtaking)
        await eventually(lambda: hub.position >= moved > top)
        assert subscription not in hub._live  # the hub dispatched those pages without it
        truth = await feed_as(role_pools, "alice")
        async with asyncio.timeout(10):
            while got[-1] < truth[-1]:
                got.append((await anext(changes)).seq)  # the rest of its read, then a second read, joined
        assert subscription in hub._live
        live = await manager_with_listeners.bulk_create_jobs([job("alice")])
        await projected(role_pools, live)
        got.append((await asyncio.wait_for(anext(changes), 10)).seq)
        assert got == await feed_as(role_pools, "alice")
        await subscription.close()


async def test_a_slow_subscriber_is_ended_and_the_others_keep_flowing(manager_with_listeners, role_pools) -> None:
    async with running_hub(manager_with_listeners, role_pools, queue_size=5) as hub:
        fast = Reader(hub.subscribe(user_id="alice"))
        slow = hub.subscribe(user_id="alice")
        slow_iter = aiter(slow)
        reading = asyncio.create_task(anext(slow_iter))
        await eventually(lambda: hub.live_subscribers == 2)
        first = await projected(role_pools, await manager_with_listeners.bulk_create_jobs([job("alice")]))
        assert (await asyncio.wait_for(reading, 10)).seq == first  # live, and from now on it never reads
        await fast.until(first)
        made = []
        for _ in range(4):  # 3 at a time: once 5 are buffered for the slow one, the next page ends it
            made += await manager_with_listeners.bulk_create_jobs([job("alice"), job("alice"), job("alice")])
            await fast.until(await projected(role_pools, made))
        assert slow.ended == OVERFLOW and hub.overflows == 1
        assert hub.live_subscribers == 1 and fast.subscription.ended is None
        truth = await feed_as(role_pools, "alice")
        assert fast.seqs == truth
        # The slow one still gets what was buffered for it, in order, then its iterator ends.
        rest = [c.seq async for c in slow_iter]
        assert rest and rest == truth[1:1 + len(rest)] and 5 <= len(rest) < len(truth) - 1
        resumed = Reader(hub.subscribe(after=rest[-1], user_id="alice"))  # what a client's reconnect does
        await resumed.until(truth[-1])
        assert [first] + rest + resumed.seqs == truth
        await fast.stop()
        await resumed.stop()


async def test_users_see_only_their_own_and_their_teams_changes_and_team_removal_applies(manager_with_listeners, role_pools) -> None:
    team = await manager_with_listeners.teams.create("studio", owner_id="alice")
    await manager_with_listeners.teams.add_member(team.team_id, "bob")
    async with running_hub(manager_with_listeners, role_pools) as hub:
        alice, bob, carol = (Reader(hub.subscribe(user_id=u)) for u in ("alice", "bob", "carol"))
        await eventually(lambda: hub.live_subscribers == 3)
        before = await manager_with_listeners.bulk_create_jobs([job("alice"), job("bob"), job("carol"), job("alice", team.team_id)])
        await bob.until(await projected(role_pools, before))
        assert await manager_with_listeners.teams.remove_member(team.team_id, "bob")
        after = await manager_with_listeners.bulk_create_jobs([job("alice", team.team_id, **TEAM_JOB)])
        marker = await manager_with_listeners.bulk_create_jobs([job("bob", original_filename="marker.mp4")])
        top = await projected(role_pools, after + marker)
        await settled(hub, (alice, bob, carol), top)
        ids = lambda reader: [c.job_id for c in reader.changes]  # noqa: E731
        assert ids(bob)[:2] in ([before[1].job_id, before[3].job_id], [before[3].job_id, before[1].job_id])
        assert ids(bob)[2:] == [marker[0].job_id], "bob still got the team's job after leaving the team"
        assert set(ids(alice)) == {before[0].job_id, before[3].job_id, after[0].job_id} and len(ids(alice)) == 3
        assert ids(carol) == [before[2].job_id]
        assert alice.seqs == await feed_as(role_pools, "alice") and carol.seqs == await feed_as(role_pools, "carol")
        for reader in (alice, bob, carol):
            await reader.stop()


async def test_the_hub_survives_a_terminated_connection(manager_with_listeners, role_pools, pool) -> None:
    async with running_hub(manager_with_listeners, role_pools) as hub:
        reader = Reader(hub.subscribe(user_id="alice"))
        await reader.until(await projected(role_pools, await manager_with_listeners.bulk_create_jobs([job("alice")])))
        pid = hub._listening.connection.get_server_pid()
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)  # as the superuser
        await eventually(lambda: hub.reconnects >= 1 and hub.connected, within=15)
        more = await manager_with_listeners.bulk_create_jobs([job("alice"), job("alice")])
        await reader.until(await projected(role_pools, more))
        assert reader.seqs == await feed_as(role_pools, "alice")
        assert hub._listening.connection.get_server_pid() != pid
        await reader.stop()


async def test_closing_the_hub_ends_every_subscription(manager, role_pools) -> None:
    async with running_hub(manager, role_pools) as hub:
        live = Reader(hub.subscribe(user_id="alice"))
        await eventually(lambda: hub.live_subscribers == 1)
        gone = Reader(hub.subscribe())
        await gone.stop()
        assert gone.subscription.ended == CLOSED
    await asyncio.wait_for(live.task, 10)
    assert live.subscription.ended == SHUTDOWN and hub.subscribers == 0 and not hub.connected
    late = hub.subscribe(user_id="alice")
    assert late.ended == SHUTDOWN and [c async for c in late] == []
