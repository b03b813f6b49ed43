"""What most commands share: the database options, an open VideoJobManager, JSON output."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from ..config import Settings
from ..connect import connect
from ..database import probe_database
from ..errors import ValidationError
from ..manager import VideoJobManager

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_database_option(parser: argparse.ArgumentParser) -> None:
    """--database-url, defaulting to VJM_DATABASE_URL, else the embedded Postgres."""
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL URL (default: VJM_DATABASE_URL, else the embedded Postgres in VJM_DATA_DIR)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """--json: machine-readable output on stdout."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_as_user_option(parser: argparse.ArgumentParser) -> None:
    """--as USER: act as an end user, so Row Level Security decides what is visible."""
    parser.add_argument("--as", dest="as_user", metavar="USER",
                        help="act as this end user (sees only their own and their teams' jobs)")


def settings_of(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, with --database-url winning."""
    return Settings.from_env(database_url=getattr(args, "database_url", None), **overrides)


@contextlib.asynccontextmanager
async def open_manager(args: argparse.Namespace, *, listeners: bool = False,
                       settings: Settings | None = None) -> AsyncIterator[VideoJobManager]:
    """A migrated VideoJobManager for one command (`--as` scopes it to an end user)."""
    settings = settings or settings_of(args)
    if settings.database_url:
        await probe_database(settings.database_url)
    async with connect(settings=settings, listeners=listeners) as manager:
        as_user = getattr(args, "as_user", None)
        yield manager.as_user(as_user) if as_user else manager.as_service(cli_principal())


async def warn_if_behind(manager: VideoJobManager) -> None:
    """One line on stderr when an answer read from the read models is behind the log and no
    projector is applying it (a list of 0 jobs from a projection that never ran says so)."""
    status = await manager.maintenance.projection_behind()
    if not status.events_behind:
        return
    live = status.leader.get("live") if status.leader else None
    if live:
        return
    running = "no projector is running: start `vjm listen`" if live is False else "is `vjm listen` running?"
    print(f"warning: {status.events_behind} event(s) are not projected yet ({running}); "
          f"this answer is behind the log", file=sys.stderr)


def cli_principal() -> str:
    """Who the audit trail names for what a trusted CLI command does: VJM_SERVICE_NAME, else the
    operator who ran it ('cli:alice'), never the database login."""
    if os.environ.get("VJM_SERVICE_NAME"):
        return os.environ["VJM_SERVICE_NAME"]
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return "cli"


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d', '500ms' as a timedelta (argparse type). A bare number is refused:
    `--older-than 15` could mean seconds or minutes, and a wrong guess resets live jobs."""
    match = DURATION.match(text or "")
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (examples: 30s, 15m, 2h)")
    if match.group(2) is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no unit: say {match.group(1)}s, {match.group(1)}m "
                                         f"or {match.group(1)}h")
    return timedelta(seconds=float(match.group(1)) * UNIT_SECONDS[match.group(2)])


def to_jsonable(value: Any) -> Any:
    """Pydantic models, dataclasses and containers of them, as plain JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {name: to_jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def print_json(value: Any) -> None:
    """Print `value` as one JSON document."""
    print(json.dumps(to_jsonable(value), default=str, indent=2))


def require(condition: bool, message: str, field: str) -> None:
    """Refuse bad input with a ValidationError (exit code 2)."""
    if not condition:
        raise ValidationError(message, field=field)


def shutdown_event() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM, so a service can stop cleanly instead of being killed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
