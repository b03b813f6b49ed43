"""The application factory: `create_app(...)` builds the FastAPI app that `vjm up` and the tests serve."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.staticfiles import StaticFiles

from videojobs import Settings, VideoJobManager

from ..connect import API, application_name
from .middleware import ApiEdge
from .openapi import install_openapi
from .problems import problem_for
from .routes import admin, audit, console, events, jobs, ops, processors, queue, stats, teams, user, workers
from .state import AppState, HttpOptions

log = structlog.get_logger("vjm.http")

STATIC_DIR = Path(__file__).parent / "static"
ManagerFactory = Callable[[], AbstractAsyncContextManager[VideoJobManager]]
DESCRIPTION = """Video jobs as an event-sourced state machine over PostgreSQL.

Authenticate with `Authorization: Bearer <JWT>` (HS256, secret `VJM_JWT_SECRET`, claims `sub`, `role`,
`aud`, `exp`). `role: authenticated` acts as end user `sub` (their own and their teams' jobs only);
`role: service_role` is for processors and admin. Errors are RFC 9457 `application/problem+json`."""
TAGS = [
    {"name": "jobs", "description": "One job: create, read, change, delete, history"},
    {"name": "user", "description": "The caller's jobs and statistics"},
    {"name": "teams", "description": "A team's jobs and statistics"},
    {"name": "stats", "description": "Statistics read from the log: claim latency"},
    {"name": "processors", "description": "Video workers (service_role): claim (long poll), progress, complete, "
                                          "fail, requeue, release; heartbeat (leases, cancellation), registry"},
    {"name": "admin", "description": "Maintenance, the worker registry and the claim policy: pauses, caps, "
                                     "fair share (service_role)"},
    {"name": "audit", "description": "Search and export the audit log, verify its hash chain (what RLS lets "
                                     "the caller read)"},
    {"name": "events", "description": "Live job changes (server-sent events)"},
    {"name": "operations", "description": "Health and metrics"},
]


def create_app(manager: VideoJobManager | None = None, *, settings: Settings | None = None,
               manager_factory: ManagerFactory | None = None, options: HttpOptions | None = None,
               database_url: str | None = None, static_dir: Path | None = STATIC_DIR) -> FastAPI:
    """Build the vjm HTTP API.

    Give it one of:
    - `manager`: a connected VideoJobManager (the caller owns it; tests use this with httpx);
    - `manager_factory`: a zero-argument callable returning an async context manager that yields a
      manager, entered in the app's lifespan (e.g. `lambda: videojobs.connect(settings=settings)`);
    - neither: the lifespan runs `videojobs.connect(settings=settings)` (VJM_DATABASE_URL or embedded).

    `settings` (default `Settings.from_env()`) must carry `jwt_secret` (VJM_JWT_SECRET);
    `jwt_audience` is checked on every token. `options` tunes body limit and stream intervals;
    `database_url` overrides the URL the event stream reads (default: the manager's).
    Files in `static_dir` (videojobs/http/static/ by default), if it exists, are served at `/`.
    """
    settings = settings or Settings.from_env()
    if not settings.jwt_secret:
        raise ValueError("the HTTP API needs a JWT secret: set VJM_JWT_SECRET")
    state = AppState(settings=settings, options=options or HttpOptions(), manager=manager)
    if database_url:
        state.extras["database_url"] = database_url
    factory = None if manager is not None else manager_factory or _default_factory(settings)
    app = FastAPI(title="vjm HTTP API", version="1.0.0", description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=_lifespan(state, factory), openapi_url=None, docs_url=None, redoc_url=None)
    app.state.vjm = state
    _assemble(app, state, static_dir)
    return app


def _assemble(app: FastAPI, state: AppState, static_dir: Path | None) -> None:
    """Errors, routers, the per-caller document, the middleware (outermost last) and the dashboard."""
    _install_errors(app)
    for module in (jobs, user, teams, stats, processors, workers, admin, console, queue, audit, events, ops):
        app.include_router(module.router)
    install_openapi(app, state.options.max_body_bytes)  # /openapi.json per caller, /docs, /redoc
    app.add_middleware(ApiEdge, metrics=state.metrics, routes=api_routes(app), max_bytes=state.options.max_body_bytes)
    if static_dir is not None and static_dir.is_dir():
        app.mount("/", StaticFiles(directory=static_dir, html=True), name="static")


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The app's API routes, also those of included routers (FastAPI may keep them nested)."""
    found: list[APIRoute] = []
    for route in app.router.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += [r for r in route.original_router.routes if isinstance(r, APIRoute)]
    return found


def _default_factory(settings: Settings) -> ManagerFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[VideoJobManager]:
        from videojobs import connect

        with application_name(API):  # the pools are named when they open (store.application_name)
            async with connect(settings=settings) as manager:
                yield manager

    return factory


def _lifespan(state: AppState, factory: ManagerFactory | None):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if factory is None:
            async with _feed_hub(state):
                yield
            return
        async with factory() as manager:
            state.manager = manager
            log.info("http_api_started")
            try:
                async with _feed_hub(state):
                    yield
            finally:
                state.manager = None
                log.info("http_api_stopped")

    return lifespan


@contextlib.asynccontextmanager
async def _feed_hub(state: AppState) -> AsyncIterator[None]:
    """The shared change-feed reader runs with the app (it connects in the background) and is closed,
    ending every event stream, before the manager and its pools. A worker of `vjm up --workers N` samples its
    own gauges meanwhile (a scrape reaches one worker; the others show what they last sampled)."""
    if state.manager is not None:
        await state.require_feed_hub()
    sampling = asyncio.create_task(state.sample_process()) if state.metrics.merged_dir else None
    try:
        yield
    finally:
        if sampling is not None:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        await state.close_feed_hub()


def _install_errors(app: FastAPI) -> None:
    """One translation layer (problems.problem_for) for every error FastAPI or the routes raise."""

    async def handle(request: Request, exc: Exception):
        return problem_for(exc, request.url.path)

    for kind in (HTTPException, RequestValidationError):
        app.add_exception_handler(kind, handle)
