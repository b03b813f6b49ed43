"""Admin (service_role tokens): the claim policy (sql/schema/063_claims.sql, `manager.queue`). Pause and
resume claims, cap the jobs processing at once per user, team or platform, choose who takes turns, and
read the policy and the history of its changes. Every change is recorded with the token's `sub` as its actor;
the database refuses (403) a service whose database role is not an admin's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from ..dependencies import ServiceManager
from ..queue_schemas import (
    CapRequest,
    FairShareRequest,
    PauseRequest,
    QueueChange,
    QueueHistory,
    QueuePolicy,
    ResumeRequest,
    cap_key,
    change_of,
    policy_of,
)
from .common import problems

router = APIRouter(prefix="/api/v1/admin/queue", tags=["admin"])


@router.get("", response_model=QueuePolicy, summary="The claim policy", responses=problems(403))
async def policy(manager: ServiceManager) -> QueuePolicy:
    """Who takes turns within a priority (`fair_share`), the platforms paused ('*': all), and the caps."""
    return policy_of(await manager.queue.policy())


@router.post("/pause", response_model=QueueChange, summary="Pause claims", responses=problems(403, 413))
async def pause(request: Annotated[PauseRequest, Body()], manager: ServiceManager) -> QueueChange:
    """No worker claims a job of `platform` (null: of any platform) until it is resumed. Running jobs run
    on and nothing queued is lost. Answers the change as recorded."""
    return change_of(await manager.queue.pause(_platform(request), request.reason))


@router.post("/resume", response_model=QueueChange, summary="Resume claims", responses=problems(403, 413))
async def resume(request: Annotated[ResumeRequest, Body()], manager: ServiceManager) -> QueueChange:
    """Claims again for `platform` (paused on its own); null lifts every pause. Idle workers hear of it at
    once. Answers the change as recorded."""
    return change_of(await manager.queue.resume(_platform(request), request.reason))


@router.put("/caps", response_model=QueueChange, summary="Set or remove a cap", responses=problems(403, 413))
async def set_cap(request: Annotated[CapRequest, Body()], manager: ServiceManager) -> QueueChange:
    """At most `max_processing` jobs processing at once of one user, team or platform (`kind`); `key` names
    it, or is '*' for each one without a cap of its own; null removes the cap (422 when there is no such
    cap: nothing is recorded). Claims never overshoot a cap (jobs already processing keep running).
    Answers the change as recorded."""
    return change_of(await manager.queue.set_cap(request.kind, cap_key(request), request.max_processing,
                                                 request.reason))


@router.put("/fair-share", response_model=QueueChange, summary="Choose who takes turns",
            responses=problems(403, 413))
async def set_fair_share(request: Annotated[FairShareRequest, Body()], manager: ServiceManager) -> QueueChange:
    """Within a priority, queued jobs take turns by user (each owner) or by team (a job without a team
    counts as its owner's). Jobs queued already keep their turns. Answers the change as recorded."""
    return change_of(await manager.queue.set_fair_share(request.by, request.reason))


@router.get("/history", response_model=QueueHistory, summary="Changes of the claim policy",
            responses=problems(403))
async def history(manager: ServiceManager,
                  limit: Annotated[int, Query(ge=1, le=1000, description="At most this many changes")] = 100,
                  ) -> QueueHistory:
    """Every change of the claim policy, newest first: who (the token's `sub`), when, what, why."""
    return QueueHistory(changes=[change_of(c) for c in await manager.queue.history(limit)])


def _platform(request: PauseRequest) -> str | None:
    return request.platform.value if request.platform is not None else None
