"""Postgres from anywhere: one way to get a database.

In order: a URL from the environment; a testcontainers PostgresContainer when a
Docker daemon answers; an embedded server from the `pgserver` wheel in a data
directory. `provide_postgres()` is a context manager yielding a PostgresHandle.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

log = structlog.get_logger("vjm.postgres")

Source = Literal["env", "docker", "embedded"]


@dataclass
class PostgresHandle:
    """A reachable PostgreSQL server: an admin URL and how to stop it."""

    url: str
    source: Source
    stop: Callable[[], None] = field(default=lambda: None, repr=False)
    data_dir: Path | None = None


def default_data_dir() -> Path:
    """Where the embedded server keeps its data across runs (VJM_DATA_DIR overrides)."""
    configured = os.environ.get("VJM_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "vjm" / "pgdata"


def docker_available(timeout: int = 2) -> bool:
    """True when a Docker daemon answers a ping (VJM_USE_DOCKER=0 disables the check)."""
    if os.environ.get("VJM_USE_DOCKER", "1") == "0":
        return False
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable daemon"
        return False


@contextlib.contextmanager
def provide_postgres(*, env_vars: tuple[str, ...] = ("VJM_DATABASE_URL",),
                     data_dir: Path | None = None, temporary: bool = False,
                     allow_docker: bool = True) -> Iterator[PostgresHandle]:
    """Yield a PostgreSQL server: env URL, else Docker, else embedded pgserver."""
    for name in env_vars:
        url = os.environ.get(name)
        if url:
            log.info("postgres_from_env", variable=name)
            yield PostgresHandle(url=url, source="env")
            return
    if allow_docker and docker_available():
        with _docker_postgres() as handle:
            yield handle
        return
    with _embedded_postgres(data_dir, temporary=temporary) as handle:
        yield handle


@contextlib.contextmanager
def _docker_postgres() -> Iterator[PostgresHandle]:
    from testcontainers.postgres import PostgresContainer

    image = os.environ.get("VJM_DOCKER_IMAGE", "postgres:16-alpine")
    with PostgresContainer(image, driver=None) as container:
        url = container.get_connection_url()
        log.info("postgres_from_docker", image=image)
        yield PostgresHandle(url=url, source="docker")


@contextlib.contextmanager
def _embedded_postgres(data_dir: Path | None, *, temporary: bool) -> Iterator[PostgresHandle]:
    import warnings

    with warnings.catch_warnings():  # pgserver's import-time platformdirs warning about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        import pgserver

    with contextlib.ExitStack() as stack:
        if temporary:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vjm-pg-")))
        data_dir = data_dir or default_data_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(data_dir, cleanup_mode="stop")
        stack.callback(server.cleanup)
        log.info("postgres_embedded", data_dir=str(data_dir))
        yield PostgresHandle(url=server.get_uri(), source="embedded", stop=server.cleanup, data_dir=data_dir)


async def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` on `admin_url`'s server unless it exists (the embedded server's `vjm`)."""
    import asyncpg

    from .application_name import named_kwargs

    conn = await asyncpg.connect(admin_url, **named_kwargs(admin_url, {}))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def with_user(url: str, user: str, password: str | None = None) -> str:
    """The same server URL logging in as another user (the old password is dropped)."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if k not in ("user", "password")])
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, query, parts.fragment))
