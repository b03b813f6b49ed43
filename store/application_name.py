"""Who each vjm session is, as a DBA sees it in pg_stat_activity: its `application_name`.

One context variable carries the name; every connection and pool vjm opens (store.pool,
store.identity) reads it once, when it is opened, and sends it as the session's
`application_name`. An entry point names itself for everything it opens below it:

    with application_name("vjm:api"):
        async with videojobs.connect(...) as manager: ...

`vjm up` and its `--workers` processes are `vjm:api`, `vjm listen` is `vjm:detector`, other
CLI commands are `vjm:cli`, a videojobs.Worker is `vjm:worker:<worker_id>`, and library use
keeps the default, `vjm`. A dedicated connection that serves one purpose pins its own name
whoever opened it: the projector's (`vjm:projector`) and the feed hub's (`vjm:feed`).
A pool's connections opened later carry the name the pool was created with.

A name the user gives wins over all of these: `?application_name=x` in the URL, or an
`application_name` in the `server_settings` passed to the connection.

Why a context variable and not a parameter: the connections are opened several layers
below the code that knows the process's role (CLI command -> videojobs.connect -> session
pools -> store), and a parameter would thread through every one of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT, API, PROJECTOR, FEED, DETECTOR, CLI = (
    "vjm", "vjm:api", "vjm:projector", "vjm:feed", "vjm:detector", "vjm:cli")
MAX_LENGTH = 63  # NAMEDATALEN - 1: pg_stat_activity keeps no more
SETTING = "application_name"

_current: ContextVar[str] = ContextVar("vjm_application_name", default=DEFAULT)


def clean(name: str) -> str:
    """`name` as PostgreSQL keeps it, decided here: printable ASCII only (others become '?', as
    the server does) and at most 63 characters. A longer name keeps its head and its tail
    around '..', so both a worker id's host and its unique suffix stay visible."""
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in name) or DEFAULT
    if len(text) <= MAX_LENGTH:
        return text
    head = (MAX_LENGTH - 2) // 2
    return f"{text[:head]}..{text[-(MAX_LENGTH - 2 - head):]}"


def worker_name(worker_id: str) -> str:
    """A videojobs.Worker's name: `vjm:worker:<worker_id>`, cleaned."""
    return clean(f"vjm:worker:{worker_id}")


def current() -> str:
    """The name connections opened now get (unless their URL or server_settings name one)."""
    return _current.get()


@contextlib.contextmanager
def application_name(name: str) -> Iterator[str]:
    """Connections and pools opened inside the block are named `name` (cleaned)."""
    token = _current.set(clean(name))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def user_named(url: str, server_settings: dict[str, str] | None) -> bool:
    """Whether the user named the session already: in the URL's query or in `server_settings`."""
    if server_settings and SETTING in server_settings:
        return True
    try:
        return SETTING in parse_qs(urlsplit(url).query)
    except ValueError:
        return False


def named_kwargs(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """asyncpg connect/create_pool keyword arguments with the current name in `server_settings`,
    unless the user named the session (asyncpg lets server_settings override the URL's query, so
    the URL's own name is kept by not sending one)."""
    settings = kwargs.get("server_settings")
    if user_named(url, settings):
        return kwargs
    return {**kwargs, "server_settings": {**(settings or {}), SETTING: current()}}
