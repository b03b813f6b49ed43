"""Fixtures for the fault tests: a Postgres server the test owns, workload sizes, LISTEN counters.

Sizes: every workload is `ci_size * VJM_FAULT_SCALE` (default 1, the size CI runs in
`make test`); `VJM_FAULT_SCALE=5` gives the issue's full sizes (e.g. 10k transitions).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from store import connect, migrate, provide_postgres, with_database
from tests.factories import principal_of
from tests.support.waiting import eventually

JOB = dict(original_filename="clip.mp4", original_filesize=1_000, clip_count=2, quality_preset="pro",
           enhancement_level="basic", platform_target="tiktok")


def fault_scale() -> float:
    """VJM_FAULT_SCALE: 1 (default) is the CI size; 5 is the issue's full size."""
    return float(os.environ.get("VJM_FAULT_SCALE", "1"))


def scaled(ci_size: int, minimum: int = 1) -> int:
    """A workload size: the CI size times VJM_FAULT_SCALE."""
    return max(minimum, int(ci_size * fault_scale()))




async def log_and_checkpoint(url: str, name: str = "main") -> tuple[int, int, int]:
    """(events in the log, events the checkpoint has applied, change_seq)."""
    conn = await asyncpg.connect(url)
    try:
        total = await conn.fetchval("SELECT count(*) FROM vjm.job_events")
        row = await conn.fetchrow("SELECT events, change_seq FROM vjm.projection_checkpoints WHERE name = $1", name)
    finally:
        await conn.close()
    return total, (row["events"] if row else 0), (row["change_seq"] if row else 0)


async def wait_projected(url: str, within: float = 30, name: str = "main") -> int:
    """Poll until the checkpoint has applied every event in the log; returns the event count."""
    seen: list[int] = []

    async def caught_up() -> bool:
        total, applied, _ = await log_and_checkpoint(url, name)
        seen[:] = [total]
        return applied == total

    await eventually(caught_up, within, "projector caught up with the log")
    return seen[0]


async def admin_execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_migrated_database(admin_url: str, name: str | None = None,
                                   template: str | None = None) -> str:
    """A new database on `admin_url`'s server (cloned from `template`, else migrated); its URL."""
    name = name or f"vjm_fault_{uuid.uuid4().hex[:10]}"
    clone = f' TEMPLATE "{template}"' if template else ""
    await admin_execute(admin_url, f'CREATE DATABASE "{name}"{clone}', *principal_of(name))
    url = with_database(admin_url, name)
    if not template:
        conn = await connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    return url


async def drop_database(admin_url: str, url: str) -> None:
    """Drop the database `url` points at (FORCE: its connections go too)."""
    from urllib.parse import urlsplit

    name = urlsplit(url).path.lstrip("/")
    await admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class OwnedServer:
    """An embedded pgserver that one test owns: stop it (pg_ctl stop -m fast) and start it again."""

    admin_url: str
    data_dir: Path
    stops: int = 0
    starts: int = 0
    _server: object = field(default=None, repr=False)

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands

        _commands.pg_ctl(["-w", *args], pgdata=self._server.pgdata, user=self._server.system_user, timeout=60)

    def stop_blocking(self) -> None:
        """pg_ctl stop -m fast: sessions are terminated, the shutdown checkpoint is written."""
        self._pg_ctl("-m", "fast", "stop")
        self.stops += 1

    def start_blocking(self) -> None:
        """Start the server again on the same data directory and socket."""
        self._server.ensure_postgres_running()
        self.starts += 1

    async def stop(self) -> None:
        """Stop without blocking the event loop (writers keep running and see the outage)."""
        await asyncio.to_thread(self.stop_blocking)

    async def start(self) -> None:
        """Start without blocking the event loop."""
        await asyncio.to_thread(self.start_blocking)

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """`async with server.down():` the server is stopped inside the block and running after it."""
        await self.stop()
        try:
            yield
        finally:
            await self.start()


@contextlib.contextmanager
def owned_server() -> Iterator[OwnedServer]:
    """A fresh embedded server in a temporary directory (never the session server or :5432)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    with provide_postgres(env_vars=(), temporary=True, allow_docker=False) as handle:
        assert handle.source == "embedded" and handle.data_dir is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(handle.data_dir)  # the same instance provide_postgres started
        yield OwnedServer(admin_url=handle.url, data_dir=handle.data_dir, _server=server)


@pytest.fixture
def own_server() -> Iterator[OwnedServer]:
    """This test's own embedded PostgreSQL server."""
    with owned_server() as server:
        yield server


@pytest.fixture
async def own_database(own_server: OwnedServer) -> str:
    """A migrated database on this test's own server."""
    return await create_migrated_database(own_server.admin_url, "vjm_faults")


class NotificationCounter:
    """A dedicated connection LISTENing on channels, counting what arrives (and keeping payloads).

    Listening on vjm_events, it holds the doorbell (sql/schema/050_locks_and_doorbell.sql), so that every append rings.
    """

    def __init__(self, url: str, channels: tuple[str, ...] = ("vjm_jobs",)):
        self._url = url
        self._channels = channels
        self.payloads: dict[str, list[str]] = {c: [] for c in channels}
        self._conn: asyncpg.Connection | None = None

    def _on(self, conn, pid, channel: str, payload: str) -> None:
        self.payloads[channel].append(payload)

    def count(self, channel: str = "vjm_jobs") -> int:
        return len(self.payloads[channel])

    async def __aenter__(self) -> NotificationCounter:
        self._conn = await asyncpg.connect(self._url)
        for channel in self._channels:
            await self._conn.add_listener(channel, self._on)
        if "vjm_events" in self._channels:
            await self._conn.execute("SELECT vjm.hold_doorbell()")
        return self

    async def __aexit__(self, *exc) -> None:
        if self._conn is not None:
            await self._conn.close()


@pytest.fixture
def sync_template(pg_server, template_database) -> tuple[str, str]:
    """(admin URL, migrated template name) for sync tests (hypothesis) that make their own databases."""
    return pg_server.url, template_database
