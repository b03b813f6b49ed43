"""VJM_READ_DATABASE_URL with a real streaming standby (tests/support/standby.py): where reads run, read-your-writes
across the replication lag, tenant isolation on the standby, the change-feed hub on the standby.

Which server answered is told from the data, never from vjm's own counters alone: the standby's
replay is paused (`pg_wal_replay_pause()`), the primary moves on, and an answer without the primary's
new rows can only have come from the standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from bench.pgbouncer import pgbouncer_binary, running_pgbouncer
from statemachine import JobNotFound
from store import with_database
from tests.support.databases import create_migrated_database, drop_database
from tests.support.http_app import FAST, JOB, http_settings
from tests.support.standby import StandbyPair
from tests.support.tokens import bearer
from tests.support.waiting import eventually
from videojobs import Settings, connect
from videojobs.http import create_app

TEMPLATE = "vjm_replica_tpl"


@pytest.fixture(scope="module")
def pair() -> Iterator[StandbyPair]:
    """A primary and its streaming standby for this module, with a migrated template database."""
    pair = StandbyPair.make(fsync="off", synchronous_commit="on")
    try:
        pair.start()

        async def prepare() -> None:
            await pair.wait_streaming()
            url = await create_migrated_database(pair.primary.url(), TEMPLATE)
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("SELECT vjm.set_jwt_secret($1, 'authenticated')", os.environ["VJM_JWT_SECRET"])
            finally:
                await conn.close()

        asyncio.run(prepare())
        yield pair
    finally:
        pair.stop()


@pytest.fixture
async def urls(pair: StandbyPair) -> AsyncIterator[tuple[str, str]]:
    """(primary, standby) URLs of this test's own database, present on the standby; replay running after."""
    name = f"vjm_rep_{uuid.uuid4().hex[:12]}"
    primary = await create_migrated_database(pair.primary.url(), name, template=TEMPLATE)
    await pair.caught_up()
    try:
        yield primary, with_database(pair.standby.url(), name)
    finally:
        await pair.resume_replay()
        await drop_database(pair.primary.url(), primary)


@contextlib.asynccontextmanager
async def opened(primary: str, standby: str | None = None, **options) -> AsyncIterator:
    """A manager on the primary, reading on `standby` when given."""
    async with connect(settings=Settings(database_url=primary, read_database_url=standby), **options) as manager:
        yield manager


async def create(manager, user: str = "alice", **fields):
    return await manager.create_job(user_id=user, original_filename="a.mp4", original_filesize=1000, clip_count=2,
                                    quality_preset="pro", enhancement_level="basic", platform_target="tiktok",
                                    **fields)


async def listed(manager, user: str = "alice") -> set[uuid.UUID]:
    return {job.job_id for job in (await manager.get_user_jobs(user)).items}


async def on(url: str, sql: str, *args) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def projected_on_primary(writer) -> None:
    assert await writer.maintenance.wait_for_projection(timeout=20)


async def test_lists_stats_and_history_are_read_on_the_standby(pair, urls) -> None:
    primary, standby = urls
    async with opened(primary) as writer, opened(primary, standby, listeners=False) as reader:
        first = await create(writer)
        await projected_on_primary(writer)
        await pair.caught_up()
        assert await listed(reader) == {first.job_id}

        await pair.pause_replay()
        second = await create(writer)  # the primary moves on; the standby does not
        await projected_on_primary(writer)
        assert await on(primary, "SELECT count(*) FROM vjm.jobs") == 2
        # The reader wrote nothing, so it has nothing to wait for: every read below is the standby's.
        assert await listed(reader) == {first.job_id}
        assert (await reader.list_jobs()).total == 1
        assert (await reader.get_job_stats(user_id="alice")).total_jobs == 1
        with pytest.raises(JobNotFound):
            await reader.get_job_history(second.job_id)  # the log, read on the standby
        assert [e.job_id for e in (await reader.audit.find_events()).items] == [first.job_id]
        with pytest.raises(JobNotFound):
            await reader.audit.job_as_of(second.job_id, second.created_at)
        # get_job_by_id is the one read that stays on the primary: it never waits and is always current.
        assert (await reader.get_job_by_id(second.job_id)).job_id == second.job_id

        await pair.resume_replay()
        await eventually(lambda: _lists(reader, {first.job_id, second.job_id}), 20, "the standby to replay")
        assert len(await reader.get_job_history(second.job_id)) == 1


async def _lists(manager, expected: set) -> bool:
    return await listed(manager) == expected


@pytest.mark.parametrize("synchronous_commit", ["on", "off"])
async def test_a_read_after_a_write_waits_for_the_standby_and_else_reads_the_primary(pair, urls,
                                                                                     synchronous_commit) -> None:
    primary, standby = urls
    name = urlsplit(primary).path.lstrip("/")
    await on(primary, f'ALTER DATABASE "{name}" SET synchronous_commit = {synchronous_commit}')
    timeout = 0.5
    async with opened(primary, standby, consistency_timeout=timeout) as manager, opened(primary) as other:
        # Commits that return before they are flushed: the wait is for the primary's insert position, else its flush.
        assert manager._session.runtime.replica.commits_flushed is (synchronous_commit == "on")
        first = await create(manager)
        assert await listed(manager) == {first.job_id}  # read your write: the standby caught up in time

        await pair.pause_replay()
        second = await create(manager)  # written on the primary while the standby replays nothing
        assert await on(standby, "SELECT count(*) FROM vjm.job_events WHERE job_id = $1", second.job_id) == 0
        started = time.monotonic()
        assert await listed(manager) == {first.job_id, second.job_id}  # so this list came from the primary
        waited = time.monotonic() - started
        assert timeout * 0.9 <= waited < timeout + 5, waited  # it waited for the standby, bounded by the timeout
        assert [e.type for e in await manager.get_job_history(second.job_id)] == ["create"]

        await pair.resume_replay()
        third = await create(manager)
        everything = {first.job_id, second.job_id, third.job_id}
        assert await listed(manager) == everything  # waited until the standby replayed the write, then read it
        # That read was the standby's: freeze it again and write elsewhere; this manager's last write is
        # replayed, so it reads the standby, which has not got the other manager's job.
        await pair.pause_replay()
        elsewhere = await create(other)
        await projected_on_primary(other)
        assert await listed(manager) == everything
        assert elsewhere.job_id not in await listed(manager)


async def test_end_users_see_only_their_rows_on_the_standby(pair, urls) -> None:
    primary, standby = urls
    async with opened(primary) as writer, opened(primary, standby, listeners=False) as reader:
        team = await writer.teams.create("T", owner_id="alice")
        own = await create(writer, "alice")
        shared = await create(writer, "alice", team_id=team.team_id)
        bobs = await create(writer, "bob")
        await projected_on_primary(writer)
        await pair.caught_up()
        alice, bob = reader.as_user("alice"), reader.as_user("bob")
        assert {j.job_id for j in (await alice.list_jobs()).items} == {own.job_id, shared.job_id}
        assert {j.job_id for j in (await bob.list_jobs()).items} == {bobs.job_id}
        assert (await bob.get_job_stats()).total_jobs == 1
        with pytest.raises(JobNotFound):
            await bob.get_job_history(own.job_id)
        assert {e.job_id for e in (await bob.audit.find_events()).items} == {bobs.job_id}

        await pair.pause_replay()
        await writer.teams.add_member(team.team_id, "bob")  # on the primary only, for now
        assert {j.job_id for j in (await bob.list_jobs()).items} == {bobs.job_id}  # the standby's membership
        await pair.resume_replay()

        async def bob_sees_the_team() -> bool:
            return {j.job_id for j in (await bob.list_jobs()).items} == {bobs.job_id, shared.job_id}
        await eventually(bob_sees_the_team, 20, "bob to see the team's job once the membership is replayed")
        assert (await bob.get_job_stats()).total_jobs == 2
        with pytest.raises(JobNotFound):
            await bob.get_job_history(own.job_id)  # alice's own job stays hers


async def test_the_feed_hub_reads_the_standby_and_hands_each_user_their_changes(pair, urls) -> None:
    primary, standby = urls
    async with opened(primary) as writer, opened(primary, standby, listeners=False) as reader:
        hub = await reader.subscriptions.open_hub(poll_interval=5.0)
        try:
            await hub.wait_ready()
            everything = aiter(hub.subscribe(after=hub.position or 0))
            bobs = aiter(hub.subscribe(after=hub.position or 0, user_id="bob"))
            made = [await create(writer, user) for user in ("alice", "bob", "alice", "bob")]
            seen_all = await _take(everything, 4)
            assert [c.job_id for c in seen_all] == [j.job_id for j in made]
            assert [c.seq for c in seen_all] == sorted(c.seq for c in seen_all)
            assert [c.job_id for c in await _take(bobs, 2)] == [made[1].job_id, made[3].job_id]

            await pair.pause_replay()
            late = await create(writer, "bob")
            await projected_on_primary(writer)
            newest = await on(primary, "SELECT max(seq) FROM vjm.job_changes")
            # The hub heard of the change (its LISTEN is on the primary) and read the standby after that:
            await hub.signals.ran.next(lambda _: hub._heard >= newest, timeout=20)
            await hub.signals.ran.next(timeout=20)
            assert hub.position is not None and hub.position < newest  # nothing read past the standby's feed
            await pair.resume_replay()
            assert [c.job_id for c in await _take(bobs, 1)] == [late.job_id]
            assert [c.job_id for c in await _take(everything, 1)] == [late.job_id]
        finally:
            await hub.close()


async def _take(changes, count: int, within: float = 20) -> list:
    """The next `count` changes of an iterator over a subscription (kept open across calls)."""
    async with asyncio.timeout(within):
        return [await anext(changes) for _ in range(count)]


async def test_a_standby_that_is_down_sends_reads_to_the_primary(pair, urls) -> None:
    primary, standby = urls
    async with opened(primary) as writer, opened(primary, standby, listeners=False) as reader:
        job = await create(writer)
        await projected_on_primary(writer)
        pair.stop_node(pair.standby)
        try:
            assert await listed(reader) == {job.job_id}
            assert len(await reader.get_job_history(job.job_id)) == 1
        finally:
            pair.start_node(pair.standby)
            await pair.wait_streaming()
        await eventually(lambda: _lists(reader, {job.job_id}), 20, "reads on the standby again")


async def test_the_http_api_reads_its_lists_on_the_standby_and_its_own_writes_everywhere(pair, urls) -> None:
    primary, standby = urls
    async with opened(primary, standby, consistency_timeout=0.5) as manager, opened(primary) as other:
        app = create_app(manager, settings=http_settings(primary), options=FAST)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test") as client:
            made = await client.post("/api/v1/process", json=JOB, headers=bearer("alice"))
            assert made.status_code == 201, made.text
            mine = {made.json()["job_id"]}
            page = await client.get("/api/v1/user/jobs", headers=bearer("alice"))
            assert {j["job_id"] for j in page.json()["items"]} == mine  # the API's own write, read back

            await pair.pause_replay()
            await create(other, "alice")  # another process's write: this API's reads go on on the standby
            await projected_on_primary(other)
            page = await client.get("/api/v1/user/jobs", headers=bearer("alice"))
            assert {j["job_id"] for j in page.json()["items"]} == mine
            stats = await client.get("/api/v1/user/jobs/stats", headers=bearer("alice"))
            assert stats.json()["total_jobs"] == 1


async def test_behind_transaction_poolers_on_both_servers_reads_still_follow_writes(pair, urls) -> None:
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (.ci/run installs Debian's pgbouncer)")
    primary, standby = urls
    with running_pgbouncer(pair.primary.url()) as on_primary, running_pgbouncer(pair.standby.url()) as on_standby:
        settings = Settings(database_url=on_primary.url_for(primary), direct_database_url=primary,
                            database_pooler="transaction", read_database_url=on_standby.url_for(standby))
        async with connect(settings=settings, consistency_timeout=0.5) as manager, opened(primary) as other:
            mine = {(await create(manager)).job_id}
            assert await listed(manager) == mine  # through both poolers: the write, then the standby's read
            bob = manager.as_user("bob")
            bobs = {(await create(bob, "bob")).job_id}
            assert await listed(bob, "bob") == bobs and (await bob.get_job_stats()).total_jobs == 1
            await pair.pause_replay()
            await create(other)
            await projected_on_primary(other)
            assert await listed(manager) == mine  # the standby's answer, through its pooler


async def test_without_a_read_url_there_are_no_standby_pools(manager) -> None:
    assert [usage.name for usage in manager.maintenance.pool_usage()] == ["service", "users"]


def test_the_read_url_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("VJM_READ_DATABASE_URL", "postgresql://reader@standby/vjm")
    assert Settings.from_env().read_database_url == "postgresql://reader@standby/vjm"
    monkeypatch.delenv("VJM_READ_DATABASE_URL")
    assert Settings.from_env().read_database_url is None
