"""A dedicated connection acting as one run-time role for its whole session: what the
projector, the feed hub, rebuild and verify run on (not pooled, so their session
settings and locks are their own)."""

from __future__ import annotations

from typing import Any

import asyncpg

from .identity import init_role_connection
from .pool import connect


async def connect_with_role(database_url: str, role: str | None, **kwargs: Any) -> asyncpg.Connection:
    """A dedicated connection that acts as run-time `role` (e.g. vjm_projector) for its session.

    Its statements are planned for their arguments every time (plan_cache_mode =
    force_custom_plan): these sessions live for days, and a generic plan made while a
    table was small (`job_id = ANY($1)` as a sequential scan of vjm.jobs) would stay
    in use as the table grew. They run a few statements per batch, so planning is cheap; the one
    exception is the projector's apply statement, whose every table access is by key: it keeps one
    plan, made again at each lease renewal (sql/queries/projector_batch.sql, listeners/projector.py).
    They run READ COMMITTED whatever the database's default: the commit-order horizon
    and the doorbell (vjm.arm_doorbell) need each statement's snapshot to be fresh.
    """
    settings = {"plan_cache_mode": "force_custom_plan", "default_transaction_isolation": "read committed",
                **kwargs.pop("server_settings", {})}
    conn = await connect(database_url, server_settings=settings, **kwargs)
    try:
        await init_role_connection(conn, role)
    except BaseException:
        conn.terminate()
        raise
    return conn
