"""HTTP API fixtures: an app on this test's database, an httpx client over ASGI, tokens, a live server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from tests.support.waiting import wait_until
from videojobs import Settings
from videojobs.http import HttpOptions, create_app
from videojobs.http.auth import SERVICE_ROLE, USER_ROLE, mint_token

SECRET = "test-secret-for-the-http-api-0123456789"
AUDIENCE = "authenticated"
JOB = {"original_filename": "holiday.mp4", "original_filesize": 1_048_576, "clip_count": 3,
       "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok"}


def token(sub: str | None, role: str = USER_ROLE, **claims) -> str:
    """A valid token for `sub` (service tokens: role=SERVICE_ROLE)."""
    return mint_token(SECRET, sub=sub, role=role, audience=AUDIENCE, **claims)


def bearer(sub: str | None = None, role: str = USER_ROLE) -> dict[str, str]:
    """Authorization headers for `sub`."""
    return {"Authorization": f"Bearer {token(sub, role)}"}


SERVICE = {"Authorization": f"Bearer {mint_token(SECRET, sub='worker-1', role=SERVICE_ROLE, audience=AUDIENCE, ttl_seconds=86400)}"}


def http_settings(database_url: str) -> Settings:
    """Settings of a test app."""
    return Settings(database_url=database_url, jwt_secret=SECRET, jwt_audience=AUDIENCE)


FAST = HttpOptions(sse_heartbeat_seconds=0.5, sse_poll_seconds=0.2)


@pytest.fixture
def app(manager, database_url):
    """The API on this test's manager (projector and detector running)."""
    return create_app(manager, settings=http_settings(database_url), options=FAST)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process (ASGI)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test") as c:
        yield c




@contextlib.asynccontextmanager
async def serve(app, *, lifespan: str = "on", send_buffer: int | None = None) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in this event loop; yields its base URL.

    `send_buffer` sets SO_SNDBUF on the listening socket (accepted connections inherit it), so
    that a response to a client that stops reading blocks the server after kilobytes, not megabytes.
    """
    listener = socket.socket()
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    await wait_until(lambda: server.started or task.done(), what="uvicorn to start")
    if task.done():
        task.result()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def live_url(app) -> AsyncIterator[str]:
    """The app served by uvicorn on 127.0.0.1 in this test's event loop (for streaming), lifespan included."""
    async with serve(app) as url:
        yield url

