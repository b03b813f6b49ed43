"""The projector's candidates and the lease's holder, as `vjm status` reads them (sql/schema/050_locks_and_doorbell.sql,
store/deployment.py): every session that asks for the lease checks in with its process, its application_name and
its client address; a candidate counts while its backend lives; a new candidate clears out the dead; a check-in
within 5 s of the last one writes nothing. Real sessions as vjm_projector (the projector's own login), read as
vjm_admin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from store.deployment import projector_candidates, projector_leader, session_groups
from store.identity import connect_as
from tests.support.waiting import eventually

TRY = "SELECT vjm.try_lead_projector('main', interval '30 seconds', $1)"


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A session acting as vjm_admin (what `vjm status` reads with)."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("SET ROLE vjm_admin")
    yield conn
    await conn.close()


async def candidate(database_url: str, name: str) -> asyncpg.Connection:
    """A projector session (vjm_listener acting as vjm_projector) named `name` in pg_stat_activity."""
    return await connect_as(database_url, role="vjm_projector", server_settings={"application_name": name})


async def test_the_leader_and_the_standby_say_who_they_are(database_url: str, admin: asyncpg.Connection) -> None:
    first, second = await candidate(database_url, "vjm:projector"), await candidate(database_url, "billing")
    try:
        assert await first.fetchval(TRY, "web-1:101") is True
        assert await second.fetchval(TRY, "web-2:202") is False
        leader = await projector_leader(admin, "main")
        assert leader is not None and leader.live
        assert (leader.backend_pid, leader.process, leader.application_name) == (
            first.get_server_pid(), "web-1:101", "vjm:projector")
        assert leader.client_addr == await first.fetchval("SELECT host(inet_client_addr())")
        assert leader.client_port == await first.fetchval("SELECT inet_client_port()")
        assert leader.since is not None and leader.leading_seconds is not None and leader.leading_seconds >= 0
        seen = await projector_candidates(admin, "main")
        assert [(c.process, c.application_name, c.leading) for c in seen] == [
            ("web-1:101", "vjm:projector", True), ("web-2:202", "billing", False)]
        assert [c.backend_pid for c in seen] == [first.get_server_pid(), second.get_server_pid()]
        groups = {g.application_name: g for g in await session_groups(admin)}
        assert groups["billing"].pids == [second.get_server_pid()]
    finally:
        await first.close()
        await second.close()


async def test_a_dead_candidate_drops_out_and_the_next_new_one_clears_it_away(database_url: str,
                                                                               admin: asyncpg.Connection) -> None:
    first, second = await candidate(database_url, "vjm:projector"), await candidate(database_url, "vjm:projector")
    third = None
    try:
        assert await first.fetchval(TRY, "web-1:101") and not await second.fetchval(TRY, "web-2:202")
        dead = first.get_server_pid()
        await admin.execute("RESET ROLE")
        await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", dead)
        await admin.execute("SET ROLE vjm_admin")
        async def only_the_standby() -> bool:
            return await _listed(admin) == ["web-2:202"]
        await eventually(only_the_standby, 5, "the dead candidate dropped from the list")
        assert not (await projector_leader(admin, "main")).live  # type: ignore[union-attr]
        assert await second.fetchval(TRY, "web-2:202")  # the standby takes the freed lease
        leader = await projector_leader(admin, "main")
        assert leader is not None and (leader.backend_pid, leader.process) == (second.get_server_pid(), "web-2:202")
        assert await admin.fetchval("SELECT count(*) FROM vjm.projector_candidates WHERE backend_pid = $1", dead) == 1
        third = await candidate(database_url, "vjm:projector")
        assert not await third.fetchval(TRY, "web-3:303")
        assert await admin.fetchval("SELECT count(*) FROM vjm.projector_candidates WHERE backend_pid = $1", dead) == 0
        assert await _listed(admin) == ["web-2:202", "web-3:303"]
    finally:
        for conn in (first, second, third):
            if conn is not None and not conn.is_closed():
                await conn.close()


async def test_a_standby_asking_twice_a_second_writes_its_row_at_most_every_five_seconds(
        database_url: str, admin: asyncpg.Connection) -> None:
    holder, standby = await candidate(database_url, "vjm:projector"), await candidate(database_url, "vjm:projector")
    try:
        assert await holder.fetchval(TRY, "web-1:101")
        row = "SELECT xmin::text, seen_at FROM vjm.projector_candidates WHERE backend_pid = $1"
        assert not await standby.fetchval(TRY, "web-2:202")
        before = await admin.fetchrow(row, standby.get_server_pid())
        for _ in range(5):
            assert not await standby.fetchval(TRY, "web-2:202")
        assert await admin.fetchrow(row, standby.get_server_pid()) == before  # the same row version: no write
        assert not await standby.fetchval(TRY, "web-2:other")  # a new name for its process is written at once
        assert (await admin.fetchrow(row, standby.get_server_pid()))["xmin"] != before["xmin"]
    finally:
        await holder.close()
        await standby.close()


async def _listed(admin: asyncpg.Connection) -> list[str | None]:
    return [c.process for c in await projector_candidates(admin, "main")]
