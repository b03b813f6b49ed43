"""A process shuts down while its database is gone (an outage, or a primary that died before a failover):
leaving `connect()` returns within seconds. The projector's pass is reconnecting then (its connection
retries for an hour); stop() lets a pass finish for `Projector.stop_grace` seconds, then cancels it."""

from __future__ import annotations

import asyncio
import time

from tests.support.owned_postgres import OwnedServer
from videojobs import Settings, connect


async def test_leaving_connect_while_the_server_is_down_takes_seconds(own_server: OwnedServer,
                                                                       own_database: str) -> None:
    async with asyncio.timeout(120):
        stack = connect(settings=Settings(database_url=own_database), listeners=True)
        manager = await stack.__aenter__()
        try:
            await manager.create_job(user_id="alice", original_filename="a.mp4", original_filesize=1, clip_count=1,
                                     quality_preset="pro", enhancement_level="basic", platform_target="tiktok")
            assert await manager.maintenance.wait_for_projection(timeout=30)
            await own_server.stop()
        finally:
            started = time.monotonic()
            await stack.__aexit__(None, None, None)
            took = time.monotonic() - started
    assert took < 30, took
