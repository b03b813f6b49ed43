"""`vjm migrate`: apply pending migrations (or show their status)."""

from __future__ import annotations

import argparse
import json

from ..config import Settings
from ..database import migrate_url, migrations_of, provide_database


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `migrate` command."""
    parser = sub.add_parser("migrate", help="apply pending schema migrations",
                            description="Apply pending migrations to VJM_DATABASE_URL (or the embedded Postgres).")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: VJM_DATABASE_URL, else embedded)")
    parser.add_argument("--status", action="store_true", help="only show applied and pending migrations")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Migrate, then print what was applied."""
    settings = Settings.from_env(database_url=args.database_url)
    if args.status and settings.database_url:
        _print(await migrations_of(settings.direct_database_url or settings.database_url), args.json)
        return 0
    async with provide_database(settings, migrated=False) as pooled_or_direct:
        url = settings.direct_database_url or pooled_or_direct  # never through a transaction pooler
        applied = await migrate_url(url, attempts=2, max_delay=3)
        status = await migrations_of(url)
    _print({"applied_now": applied, **status}, args.json)
    return 0


def _print(status: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status))
        return
    for key, versions in status.items():
        names = ["baseline" if v == 0 else f"{v:03d}" for v in versions]
        print(f"{key.replace('_', ' ')}: {', '.join(names) or 'none'}")
