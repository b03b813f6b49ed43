"""`videojobs.connect()`: a ready VideoJobManager, with the listeners running in-process by default."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import asyncpg
import structlog

from listeners import (
    ProjectionWatcher,
    Projector,
    ProjectorConfig,
    ReplicaReads,
    StuckDetector,
    StuckDetectorConfig,
)
from store.application_name import API, CLI, DETECTOR, application_name
from store.application_name import PROJECTOR as PROJECTOR_NAME
from store.identity import (
    ADMIN,
    PROCESSOR,
    PROJECTOR,
    create_role_pool,
    install_identity_key,
    may_act_as_admin,
)
from store.replica import commits_flushed
from store.role_connection import connect_with_role
from store.tokens import DatabaseTokens, LocalTokens, TokenSource, configure_tokens, default_tokens
from store.write_combiner import WriteCombiner

from .config import Settings
from .database import provide_database
from .manager import Caller, Runtime, VideoJobManager

log = structlog.get_logger("vjm.connect")
__all__ = ["connect", "application_name", "API", "CLI", "DETECTOR"]


def login_of(url: str) -> str:
    """The user a URL logs in as (libpq's default, the OS user, is not guessed: 'postgres')."""
    parts = urlsplit(url)
    return unquote(parts.username) if parts.username else "postgres"


async def service_role_for(url: str) -> str:
    """vjm_admin when the URL's login may act as it (superuser or member), else vjm_processor."""
    return ADMIN if await may_act_as_admin(url) else PROCESSOR


@contextlib.asynccontextmanager
async def connect(url: str | None = None, *, listeners: bool = True, settings: Settings | None = None,
                  service_role: str | None = None, consistency_timeout: float = 2.0,
                  migrate: bool = True, read_url: str | None = None) -> AsyncIterator[VideoJobManager]:
    """Open a VideoJobManager on `url` (else VJM_DATABASE_URL, else the embedded Postgres).

    Behind a transaction pooler (Settings.database_pooler) the pools connect to `url` and
    everything that keeps session state (the listeners, the change feed, migrations) to
    Settings.direct_database_url. The schema is migrated first, unless `migrate=False` (a process whose parent migrated, as the
    workers of `vjm up --workers N`). With `listeners=True` the projector (leader-elected,
    so several processes may run it) and the stuck-job detector run in this process;
    pass `listeners=False` when `vjm listen` runs them elsewhere.

    `read_url` (else VJM_READ_DATABASE_URL): a streaming standby of the database. Lists, stats,
    history, time travel and the change-feed hub read there, once it has replayed this
    runtime's writes (videojobs/manager/reads.py); writes, claims and the projector stay here.
    """
    settings = settings or Settings.from_env(database_url=url)
    read_url = read_url or settings.read_database_url
    async with provide_database(settings, migrated=migrate) as database_url, contextlib.AsyncExitStack() as stack:
        # Pools on VJM_DATABASE_URL (a pooler, maybe); LISTEN and session locks on the direct URL.
        direct_url = settings.direct_database_url or database_url
        role = service_role or await service_role_for(direct_url)
        service = await create_role_pool(database_url, role=role, login=login_of(database_url),
                                         min_size=settings.pool_min_size, max_size=settings.pool_size,
                                         pooler=settings.database_pooler)
        stack.push_async_callback(service.close)
        users = await create_role_pool(database_url, role=None, min_size=settings.pool_min_size,
                                       max_size=settings.user_pool_size or settings.pool_size,
                                       pooler=settings.database_pooler)
        stack.push_async_callback(users.close)
        # The watcher reads the projection checkpoint, which only service roles may see.
        watcher = ProjectionWatcher(direct_url, role=PROCESSOR)
        stack.push_async_callback(watcher.close)
        tokens = await token_source(service, role, settings)
        replica = await open_replica(stack, read_url, role, settings, (service, users)) if read_url else None
        running = await start_listeners(stack, direct_url, service, settings) if listeners else None
        runtime = Runtime(service_pool=service, user_pool=users, database_url=direct_url, watcher=watcher,
                          tokens=tokens, consistency_timeout=consistency_timeout, listeners=running,
                          combiner=WriteCombiner(service) if settings.write_combining else None,
                          user_combiner=WriteCombiner(users) if settings.write_combining else None, replica=replica)
        manager = VideoJobManager(runtime, Caller(service=settings.service_name))
        yield manager


async def open_replica(stack: contextlib.AsyncExitStack, read_url: str, role: str, settings: Settings,
                       primary: tuple[asyncpg.Pool, asyncpg.Pool]) -> ReplicaReads:
    """The standby's two pools, as the primary's (the service role with the read URL's login; end users as
    vjm_app), of the same sizes, behind the same kind of pooler (VJM_DATABASE_POOLER: a pooled standby breaks a
    direct pool, a direct one only loses the statement cache); closed with `stack`. Whether the `primary` pools
    commit synchronously is read once, here (a read after a write then waits for the primary's flush position,
    not its insert position)."""
    flushed = all([await commits_flushed(pool) for pool in primary])
    service = await create_role_pool(read_url, role=role, login=login_of(read_url), min_size=settings.pool_min_size,
                                     max_size=settings.pool_size, pooler=settings.database_pooler)
    stack.push_async_callback(service.close)
    users = await create_role_pool(read_url, role=None, min_size=settings.pool_min_size,
                                   max_size=settings.user_pool_size or settings.pool_size,
                                   pooler=settings.database_pooler)
    stack.push_async_callback(users.close)
    return ReplicaReads(service, users, commits_flushed=flushed)


async def token_source(service: asyncpg.Pool, role: str, settings: Settings) -> TokenSource | None:
    """Where as_user() gets end users' tokens; installs VJM_JWT_SECRET in the database when it may.

    With a secret configured, tokens are signed in this process, and an admin service role
    makes the database's key equal to it (one secret for the HTTP API and the database).
    Without one, an admin asks the database (`vjm.issue_token`); anyone else cannot act as users.
    """
    if settings.jwt_secret:
        if role == ADMIN and await install_identity_key(service, settings.jwt_secret, settings.jwt_audience):
            log.info("jwt_secret_installed", audience=settings.jwt_audience)
        tokens = LocalTokens(settings.jwt_secret, settings.jwt_audience)
        if default_tokens() is None:  # acting_as(user_id=...) elsewhere in the process (the feed hub)
            configure_tokens(tokens)
        return tokens
    return DatabaseTokens(service) if role == ADMIN else None


@dataclass
class Listeners:
    """The projector and stuck detector running in this process."""

    projector: Projector
    detector: StuckDetector

    @property
    def detector_running(self) -> bool:
        return self.detector.running

    @property
    def projector_leader(self) -> bool:
        """Whether this process's projector holds the lease (as of its last renewal)."""
        return self.projector.is_leader

    @property
    def projector_backend_pid(self) -> int | None:
        """The server pid of this process's projector connection (the lease's holder_pid when it leads)."""
        return self.projector.backend_pid


async def start_listeners(stack: contextlib.AsyncExitStack, url: str, pool: asyncpg.Pool,
                          settings: Settings) -> Listeners:
    """Start the projector (as vjm_projector, leader-elected) and the stuck detector; stop them with `stack`.

    AccessDenied, before anything starts, when the login may not act as vjm_projector: the
    projector would otherwise retry forever and project nothing behind a "running".
    """
    with application_name(PROJECTOR_NAME):
        probe = await connect_with_role(url, PROJECTOR, attempts=2, max_delay=2)
    await probe.close()
    projector = Projector(ProjectorConfig(database_url=url, role=PROJECTOR))
    await projector.start()
    stack.push_async_callback(projector.stop)
    detector = StuckDetector(pool, StuckDetectorConfig(timeout=settings.stuck_timeout_seconds,
                                                        interval=settings.stuck_interval_seconds))
    await detector.start()
    stack.push_async_callback(detector.stop)
    log.info("listeners_started", stuck_timeout=settings.stuck_timeout_seconds)
    return Listeners(projector, detector)
