"""HTTP API fixtures: an app on this test's manager, an httpx client over ASGI, a live uvicorn server.

Which fixture starts what in the background:
- `app`, `client`: nothing (the ASGI client runs no lifespan; the manager runs no listeners);
- `app_with_listeners`, `client_with_listeners`: the manager's projector and stuck detector;
- `live_server_with_listeners`: a uvicorn server in this test's loop serving `app_with_listeners`
  (the SSE stream reads the change feed the projector writes), and with its lifespan the feed hub.
Tokens, settings and request bodies are in tests.support (tokens, http_app).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.http_app import FAST, http_settings
from tests.support.servers import serve
from tests.support.tokens import SERVICE, bearer  # noqa: F401 (re-exported: see below)
from videojobs.http import create_app

# tests/http/test_schemathesis.py (being rewritten on another branch) still imports FAST, SERVICE,
# bearer and http_settings from this module; its import moves to tests.support, then these go.


@pytest.fixture
def app(manager, database_url):
    """The API on this test's manager (which starts no background service)."""
    return create_app(manager, settings=http_settings(database_url), options=FAST)


@pytest.fixture
def app_with_listeners(manager_with_listeners, database_url):
    """The API on a manager whose projector and stuck detector run in-process."""
    return create_app(manager_with_listeners, settings=http_settings(database_url), options=FAST)


def _asgi_client(app) -> httpx.AsyncClient:
    """An httpx client talking to `app` in-process (ASGI, no lifespan)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test")


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to `app` in-process (ASGI)."""
    async with _asgi_client(app) as c:
        yield c


@pytest.fixture
async def client_with_listeners(app_with_listeners) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to `app_with_listeners` in-process (ASGI)."""
    async with _asgi_client(app_with_listeners) as c:
        yield c


@pytest.fixture
async def live_server_with_listeners(app_with_listeners) -> AsyncIterator[str]:
    """The base URL of `app_with_listeners` served by uvicorn on 127.0.0.1 in this test's event loop (for
    streaming); its lifespan starts the feed hub."""
    async with serve(app_with_listeners) as url:
        yield url
