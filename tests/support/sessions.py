"""Who is connected to a test's database, as a DBA sees it in pg_stat_activity."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from tests.support.waiting import eventually

OBSERVER = "vjm-test-observer"


async def sessions(database_url: str) -> list[asyncpg.Record]:
    """pid, application_name and wait_event_type of every other client session on `database_url`'s database."""
    conn = await asyncpg.connect(database_url, server_settings={"application_name": OBSERVER})
    try:
        return await conn.fetch(
            "SELECT pid, application_name, wait_event_type FROM pg_stat_activity "
            "WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


async def names_become(database_url: str, expected: Iterable[str], within: float = 30) -> list[asyncpg.Record]:
    """Poll until the other sessions on the database carry exactly the names `expected` (each at least once);
    those sessions. Connections open in the background and short-lived probes close, so it polls."""
    wanted, seen = set(expected), []

    async def settled() -> bool:
        nonlocal seen
        seen = await sessions(database_url)
        return {row["application_name"] for row in seen} == wanted

    await eventually(settled, within, lambda: f"wanted {sorted(wanted)}, saw {[tuple(r) for r in seen]}")
    return seen


def with_query(url: str, **params: str) -> str:
    """`url` with query parameters added."""
    from urllib.parse import urlencode

    return url + ("&" if "?" in url else "?") + urlencode(params)
