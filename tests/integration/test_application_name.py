"""Every session vjm opens names itself (application_name), so a DBA sees in pg_stat_activity who is who;
a name the user gives (in the URL or in server_settings) wins. Real Postgres, real pools and listeners."""

from __future__ import annotations

from store import connect as store_connect
from store import create_role_pool
from store.application_name import API, DEFAULT, FEED, MAX_LENGTH, PROJECTOR, application_name, worker_name
from tests.support.factories import create_data
from tests.support.sessions import names_become, sessions, with_query
from tests.support.workers import running_in_process
from videojobs import Settings, Worker, connect

# Not ASCII, with a slash, and longer than PostgreSQL keeps: the name must still say which worker it is.
WORKER_ID = "encoder-ü/" + "x" * 80 + ":pid42:tail7"


def a_worker(database_url: str) -> Worker:
    worker = Worker(database_url, worker_id=WORKER_ID, poll_interval=0.2)

    @worker.handler
    async def handle(job, ctx) -> list[str]:
        return []

    return worker


async def test_the_api_its_listeners_and_a_worker_each_name_their_sessions(database_url: str) -> None:
    ours = worker_name(WORKER_ID)
    assert ours.startswith("vjm:worker:encoder-?/") and ours.endswith(":pid42:tail7") and len(ours) == MAX_LENGTH
    with application_name(API):  # as `vjm up` names its process
        async with connect(settings=Settings(database_url=database_url), listeners=True) as manager:
            hub = await manager.subscriptions.open_hub()
            try:
                async with running_in_process(a_worker(database_url)):
                    seen = await names_become(database_url, {API, PROJECTOR, FEED, ours})
                    health = await manager.maintenance.health(60)
            finally:
                await hub.close()
    by_pid = {row["pid"]: row["application_name"] for row in seen}
    assert by_pid[health.projector_backend_pid] == PROJECTOR


async def test_library_use_is_named_vjm(database_url: str) -> None:
    async with connect(settings=Settings(database_url=database_url), listeners=True):
        await names_become(database_url, {DEFAULT, PROJECTOR})


async def test_the_urls_own_application_name_wins_everywhere(database_url: str) -> None:
    url = with_query(database_url, application_name="billing-dashboard")
    with application_name(API):
        async with connect(settings=Settings(database_url=url), listeners=True) as manager:
            hub = await manager.subscriptions.open_hub()
            try:
                async with running_in_process(a_worker(url)):
                    await names_become(database_url, {"billing-dashboard"})
            finally:
                await hub.close()


async def test_server_settings_application_name_wins(database_url: str) -> None:
    with application_name(API):
        conn = await store_connect(database_url, server_settings={"application_name": "theirs"})
        pool = await create_role_pool(database_url, role=None, server_settings={"application_name": "pooled"})
    try:
        await names_become(database_url, {"theirs", "pooled"})
    finally:
        await conn.close()
        await pool.close()


async def test_the_http_app_serving_on_its_own_is_vjm_api(database_url: str) -> None:
    """create_app(settings=...) opens its manager in its lifespan (uvicorn's `videojobs.http:create_app` way)."""
    from videojobs.http import create_app

    app = create_app(settings=Settings(database_url=database_url, jwt_secret="s" * 40))
    async with app.router.lifespan_context(app):
        await names_become(database_url, {API, PROJECTOR, FEED})


async def test_pools_with_no_minimum_open_nothing_until_used(database_url: str) -> None:
    """VJM_POOL_MIN_SIZE=0: an idle process holds no connection (README "Connections")."""
    settings = Settings(database_url=database_url, pool_min_size=0, user_pool_size=2)
    async with connect(settings=settings, listeners=False) as manager:
        assert await sessions(database_url) == []
        job = await manager.create_job(user_id="alice", **create_data())
        assert (await manager.as_user("alice").get_job_by_id(job.job_id)).job_id == job.job_id
        assert {row["application_name"] for row in await sessions(database_url)} == {DEFAULT}
