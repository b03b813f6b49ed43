"""Schemathesis against the app's own OpenAPI document: no 500s, no response that breaks the schema.

The app runs under uvicorn in a thread with its own event loop and its own manager
(the lifespan connects), on this test's database; schemathesis drives every
operation (except the endless event stream) as an end user and as the service.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import asyncpg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from store import with_database
from tests.support.servers import free_port
from videojobs.http import create_app

from .conftest import FAST, SERVICE, bearer, http_settings

MAX_EXAMPLES = 25
SKIPPED = {"/api/v1/events/stream"}


@pytest.fixture
def sync_database(pg_server, template_database):
    """A database of its own for a synchronous test (the server runs in another thread's loop)."""
    name = f"vjm_st_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(pg_server.url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield with_database(pg_server.url, name)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def served(sync_database):
    """(app, base URL) of a uvicorn server in a background thread, with the app's own lifespan."""
    app = create_app(settings=http_settings(sync_database), options=FAST)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)  # poll
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


def test_schemathesis_finds_no_server_errors_or_schema_violations(served):
    app, base_url = served
    schema = schemathesis.openapi.from_dict(app.openapi())
    examples = {"count": 0}
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path not in SKIPPED]
    assert len(operations) >= 14
    for operation in operations:
        for headers in (bearer("fuzz-user"), SERVICE):
            _fuzz(operation, headers, base_url, examples)
    assert examples["count"] >= len(operations) * 2 * 5
    print(f"schemathesis: {len(operations)} operations, {examples['count']} examples, 0 failures")


def _fuzz(operation, headers: dict, base_url: str, examples: dict) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        examples["count"] += 1
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    run()
