"""Databases a test makes for itself on a server it has the admin URL of: created, migrated or cloned, dropped."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import asyncpg

from store import connect, migrate, with_database
from tests.support.factories import principal_of


async def admin_execute(url: str, *statements: str) -> None:
    """Run `statements` in order on one connection to `url` (CREATE/DROP DATABASE cannot run in a transaction)."""
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
    name = urlsplit(url).path.lstrip("/")
    await admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
