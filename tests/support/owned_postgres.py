"""A PostgreSQL server one test owns, to stop and start under a running workload (never the session server)."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from store import provide_postgres


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
