"""Jobs of three users in every status, made through the manager (no listeners: `vjm up` projects them)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.support.factories import create_data

# (user, final status, platform): three users' jobs, failures on two platforms for the bulk retry
PLAN = [("alice", "completed", "youtube_shorts"), ("alice", "failed", "instagram"), ("alice", "processing", "tiktok"),
        ("alice", "queued", "instagram"), ("alice", "failed", "tiktok"),
        ("bob", "failed", "instagram"), ("bob", "queued", "tiktok"), ("bob", "completed", "instagram"),
        ("carol", "failed", "instagram"), ("carol", "cancelled", "youtube_shorts"), ("carol", "completed", "tiktok")]


@contextlib.asynccontextmanager
async def manager_of(database_url: str) -> AsyncIterator[Any]:
    """A trusted manager on the test's database, without listeners."""
    from videojobs import Settings, connect

    async with connect(settings=Settings(database_url=database_url), listeners=False) as manager:
        yield manager


async def seed_three_users(database_url: str) -> list[dict[str, str]]:
    """PLAN's jobs, each moved to its status by worker-1; a dict per job (id, user, status, platform)."""
    made = []
    async with manager_of(database_url) as manager:
        for n, (user, status, platform) in enumerate(PLAN):
            job = await manager.create_job(user_id=user, **create_data(original_filename=f"{user}-{n}.mp4",
                                                                       platform_target=platform))
            await _move(manager, str(job.job_id), status)
            made.append({"id": str(job.job_id), "user": user, "status": status, "platform": platform})
    return made


async def _move(manager: Any, job_id: str, status: str) -> None:
    if status == "cancelled":
        await manager.cancel_job(job_id, "changed my mind")
    if status in ("queued", "cancelled"):
        return
    attempt = await manager.start_processing(job_id, "worker-1")
    if status == "completed":
        await manager.complete_job(job_id, ["/out/1.mp4"], 2.5, attempt.attempt, actor="worker-1")
    elif status == "failed":
        await manager.fail_job(job_id, "unsupported codec", attempt.attempt, actor="worker-1")


async def job_stats(database_url: str) -> Any:
    """get_job_stats() of every job, as the trusted service sees them."""
    async with manager_of(database_url) as manager:
        return await manager.get_job_stats(days=14)
