"""`vjm up` as a subprocess for tests that need the real server: API, dashboard, projector, stuck detector."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.waiting import eventually
from tests.support.workers import VJM

SERVING = "vjm up: serving"


@contextlib.asynccontextmanager
async def vjm_up(database_url: str, output: Path, **env: str) -> AsyncIterator[str]:
    """`vjm up` on a free port against `database_url` (its output goes to `output`; `env` adds variables);
    yields its base URL, and stops it with SIGTERM at the end."""
    environment = {**{k: v for k, v in os.environ.items() if k != "VJM_DATABASE_URL"}, "VJM_LOG_JSON": "1", **env}
    with output.open("w") as sink:
        process = await asyncio.create_subprocess_exec(VJM, "up", "--port", "0", "--database-url", database_url,
                                                       env=environment, stdout=sink, stderr=sink)
    try:
        await eventually(lambda: serving_line(output) or process.returncode is not None, 60, "vjm up to serve")
        line = serving_line(output)
        assert line, f"vjm up did not start (see {output})"
        yield line.split("serving ")[1].split("/ ")[0]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()


def serving_line(output: Path) -> str:
    """The line in which `vjm up` says where it serves ("" until then)."""
    return next((line for line in output.read_text().splitlines() if SERVING in line), "")
