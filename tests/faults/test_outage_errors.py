"""What callers see when the database goes away: a clear DatabaseUnavailable, quickly (issue 9, part 2).

Each test here is the minimal reproduction of a product bug found by the server
restart test (each was a strict xfail until its fix landed).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from statemachine import DatabaseUnavailable
from tests.support.factories import create_data
from tests.support.http_app import http_settings
from tests.support.tokens import bearer
from tests.support.waiting import eventually
from videojobs import Settings
from videojobs import connect as connect_manager


async def test_read_that_loses_its_connection_raises_database_unavailable(database_url: str) -> None:
    async with connect_manager(settings=Settings(database_url=database_url), listeners=False) as manager:
        job = await manager.create_job(user_id="u1", **create_data())
        blocker = await asyncpg.connect(database_url)
        try:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE vjm.jobs IN ACCESS EXCLUSIVE MODE")
            read = asyncio.create_task(manager.get_job_history(job.job_id))  # warm-up: not blocked (events)
            await read
            read = asyncio.create_task(manager.get_job_by_id(job.job_id))
            await _kill_the_waiter(blocker, "wait_event_type = 'Lock'", read, "the read waits on the lock")
        finally:
            await blocker.close()


async def test_read_after_write_fails_fast_while_server_is_down(own_server, own_database: str) -> None:
    settings = Settings(database_url=own_database)
    async with connect_manager(settings=settings, listeners=False, consistency_timeout=0.2) as manager:
        job = await manager.create_job(user_id="u1", **create_data())  # the projection has not applied it (no projector)
        async with own_server.down():
            try:
                async with asyncio.timeout(5):
                    with pytest.raises(DatabaseUnavailable):
                        await manager.get_job_by_id(job.job_id)
            except TimeoutError:
                pytest.fail("get_job_by_id hung for 5 s with the server down (consistency_timeout=0.2)")


async def test_http_api_answers_503_while_server_is_down(own_server, own_database: str) -> None:
    import httpx

    from videojobs.http import create_app

    settings = http_settings(own_database)
    async with connect_manager(settings=settings, listeners=False, consistency_timeout=0.2) as manager:
        app = create_app(manager, settings=settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test") as client:
            assert (await client.get("/api/v1/user/jobs", headers=bearer("alice"))).status_code == 200
            async with own_server.down():
                async with asyncio.timeout(20):
                    for path in ("/api/v1/user/jobs", "/api/v1/user/jobs/stats", "/healthz"):
                        response = await client.get(path, headers=bearer("alice"))
                        assert response.status_code == 503, (path, response.status_code, response.text[:200])
            await eventually(lambda: _ok(client), 20, "the API answers again after the restart")


async def _ok(client) -> bool:
    return (await client.get("/api/v1/user/jobs", headers=bearer("alice"))).status_code == 200


async def test_a_user_write_that_loses_its_connection_at_commit_raises_database_unavailable(database_url: str) -> None:
    # A deferred trigger holds the user's COMMIT open; the backend is killed while it waits there.
    admin = await asyncpg.connect(database_url)
    await admin.execute("""
        CREATE FUNCTION public.hold_commit() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON vjm.job_events
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.type = 'cancel') EXECUTE FUNCTION public.hold_commit();
        GRANT EXECUTE ON FUNCTION public.hold_commit() TO PUBLIC""")
    try:
        async with connect_manager(settings=Settings(database_url=database_url), listeners=False) as manager:
            job = await manager.create_job(user_id="u1", **create_data())
            cancel = asyncio.create_task(manager.as_user("u1").cancel_job(job.job_id))
            await _kill_the_waiter(admin, "wait_event = 'PgSleep'", cancel,
                                   "the user's COMMIT is held by the deferred trigger")
    finally:
        await admin.close()


async def _kill_the_waiter(admin: asyncpg.Connection, waiting: str, call: asyncio.Task, what: str) -> None:
    """Terminate the backend of this database that waits as `waiting` (SQL); `call` must raise DatabaseUnavailable."""
    async def waiter_pid() -> int | None:
        return await admin.fetchval("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                    f" AND pid <> pg_backend_pid() AND {waiting} LIMIT 1")
    await eventually(waiter_pid, 10, what)
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", await waiter_pid())
    with pytest.raises(DatabaseUnavailable):
        await call


