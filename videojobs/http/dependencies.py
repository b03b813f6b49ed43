"""FastAPI dependencies: the app state, the verified caller, and the manager acting as that caller.

Every dependency is `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread
hand-off (and a wait for the GIL) per dependency per request for a few microseconds of work
(bench/README.md, "the HTTP path": 12% of `vjm up`'s CPU under load, and the latency of the hops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from videojobs import VideoJobManager

from .auth import USER_ROLE, Forbidden, Principal, bearer_token, decode_token
from .state import AppState

BEARER = "bearerAuth"  # the security scheme every operation that takes a token declares (openapi.py)
bearer_scheme = HTTPBearer(auto_error=False, scheme_name=BEARER, bearerFormat="JWT",
                           description="HS256 JWT signed with VJM_JWT_SECRET. Claims: `sub`, `role` "
                                       "(`authenticated` or `service_role`), `aud`, `exp`.")


async def app_state(request: Request) -> AppState:
    """The AppState of the running app."""
    return request.app.state.vjm


async def principal(request: Request) -> Principal:
    """The verified caller of this request (401 when the token is missing or invalid).

    No sub-dependency: each costs FastAPI a nested resolution per request, and this one is in every
    request (bench/README.md, "the HTTP path"). The OpenAPI documents declare the bearer scheme on
    every operation that depends on this (openapi.py)."""
    settings = request.app.state.vjm.settings
    return decode_token(bearer_token(request.headers.get("authorization")), secret=settings.jwt_secret or "",
                        audience=settings.jwt_audience)


async def caller_manager(request: Request, who: Annotated[Principal, Depends(principal)]) -> VideoJobManager:
    """The manager acting as the caller: `as_user(sub)` under RLS for users, `as_service(sub)` for services."""
    return _acting_as(request, who)


@dataclass(frozen=True, slots=True)
class Acting:
    """The verified caller and the manager acting as them, resolved as one dependency (`acting`)."""

    who: Principal
    manager: VideoJobManager


async def acting(request: Request) -> Acting:
    """`principal` and `caller_manager` in one: FastAPI resolves each dependency of a request in turn, and one
    nested in another cost a create 11 us of its ~450 (bench/README.md, "the HTTP path, third round"). For the
    hottest route; like `principal`, one of the TOKEN_CHECKS."""
    who = await principal(request)
    return Acting(who, _acting_as(request, who))


def _acting_as(request: Request, who: Principal) -> VideoJobManager:
    manager = request.app.state.vjm.require_manager()
    if who.is_service:
        return manager.as_service(who.sub or manager.service or "service")
    if who.role == USER_ROLE and who.sub:
        return manager.as_user(who.sub, token=who.token)
    raise Forbidden(f"role {who.role!r} may not use this API")


async def service_principal(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Only service_role tokens pass (processor and admin endpoints); others get 403."""
    if not who.is_service:
        raise Forbidden("this endpoint needs a service_role token")
    return who


async def service_manager(request: Request, who: Annotated[Principal, Depends(service_principal)]) -> VideoJobManager:
    """The trusted manager acting as the service that called (its token's `sub` is the actor it records)."""
    manager = request.app.state.vjm.require_manager()
    return manager.as_service(who.sub or manager.service or "service")


# The dependencies that verify the request's token: openapi.py declares the bearer scheme on every route that
# depends on one of them.
TOKEN_CHECKS = (principal, acting)

Caller = Annotated[Principal, Depends(principal)]
CallerAndManager = Annotated[Acting, Depends(acting)]
Manager = Annotated[VideoJobManager, Depends(caller_manager)]
ServiceCaller = Annotated[Principal, Depends(service_principal)]
ServiceManager = Annotated[VideoJobManager, Depends(service_manager)]
State = Annotated[AppState, Depends(app_state)]
