"""Named queries with named parameters: the one way store/ runs the SQL of sql/queries/*.sql.

A query is written once, in a file of sql/queries/, as a block headed `-- name --` and one
line of description; its parameters are `:names` in the statement (`WHERE job_id = :job_id`,
`:job_ids::uuid[]`). Callers pass them as keyword arguments:

    row = await fetch_one(executor, "job_get", job_id=job_id)

A missing or unknown parameter, or an unknown query, raises QueryArgumentError before
anything is sent. The statement asyncpg prepares is the text with `$1, $2, ...` in place of
the names (numbered in order of first appearance), so plans and the statement cache are
those of plain asyncpg. Driver errors pass through unchanged: the caller translates them
(store.errors.translate_error) with what it knows of the job and the trigger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from asyncpg import Record
from asyncpg.cursor import CursorFactory

from .executor import Connection, Executor
from .sqlfiles import sql_dir


class QueryArgumentError(TypeError):
    """A named query called with a parameter missing or unknown, or a query name that does not exist."""


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """One query of sql/queries/: the statement as asyncpg takes it, and the name of each `$n`."""

    name: str
    sql: str                 # `:names` replaced by $1, $2, ...
    params: tuple[str, ...]  # params[n - 1] is the name of $n

    def args(self, given: Mapping[str, object]) -> tuple[object, ...]:
        """The positional arguments of `sql`, from named ones; QueryArgumentError unless they match exactly."""
        if given.keys() != set(self.params):
            missing = [p for p in self.params if p not in given]
            unknown = sorted(set(given) - set(self.params))
            raise QueryArgumentError(
                f"query {self.name!r} takes {', '.join(self.params) or 'no parameters'}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        return tuple(given[p] for p in self.params)


def named_query(name: str) -> NamedQuery:
    """The query called `name`; QueryArgumentError naming it when there is none."""
    try:
        return _all_queries()[name]
    except KeyError:
        raise QueryArgumentError(f"no named query {name!r} in sql/queries/") from None


def bind(query: str, params: Mapping[str, object]) -> tuple[str, tuple[object, ...]]:
    """The statement of `query` and its positional arguments; QueryArgumentError before anything is sent."""
    named = named_query(query)
    return named.sql, named.args(params)


async def fetch_all(executor: Executor, query: str, /, **params: Any) -> list[Record]:
    """Every row of the query."""
    sql, args = bind(query, params)
    return await executor.fetch(sql, *args)


async def fetch_optional(executor: Executor, query: str, /, **params: Any) -> Record | None:
    """The first row of the query, or None when it returns none."""
    sql, args = bind(query, params)
    return await executor.fetchrow(sql, *args)


async def fetch_one(executor: Executor, query: str, /, **params: Any) -> Record:
    """The first row of a query that always returns one (an aggregate, a function call); LookupError if none."""
    row = await fetch_optional(executor, query, **params)
    if row is None:
        raise LookupError(f"query {query!r} returned no row")
    return row


async def fetch_value(executor: Executor, query: str, /, **params: Any) -> Any:
    """The first column of the first row (None when there is no row)."""
    sql, args = bind(query, params)
    return await executor.fetchval(sql, *args)


async def execute(executor: Executor, query: str, /, **params: Any) -> str:
    """Run the query for its effect; the command status (e.g. 'DELETE 3')."""
    sql, args = bind(query, params)
    return await executor.execute(sql, *args)


def stream_rows(conn: Connection, query: str, /, *, prefetch: int, **params: Any) -> CursorFactory[Record]:
    """A server-side cursor over the query (iterate it with `async for` inside a transaction)."""
    sql, args = bind(query, params)
    return conn.cursor(sql, *args, prefetch=prefetch)


# --- loading sql/queries/*.sql ---

@cache
def _all_queries() -> dict[str, NamedQuery]:
    """Every named query of sql/queries/*.sql; a name defined twice is an error."""
    queries: dict[str, NamedQuery] = {}
    for path in sorted((sql_dir() / "queries").glob("*.sql")):
        for name, body in _blocks(path.read_text()).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = compile_query(name, body)
    return queries


def _blocks(text: str) -> dict[str, str]:
    """Blocks headed `-- name --`: the statement of each, without its comment lines."""
    blocks: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- ") and stripped.endswith(" --") and len(stripped) > 6:
            name = stripped[3:-3].strip()
            if name in blocks:
                raise ValueError(f"query {name!r} is defined twice in one file")
            lines = blocks[name] = []
        elif lines is not None and not stripped.startswith("--"):
            lines.append(line)
    return {name: "\n".join(body).strip().rstrip(";") for name, body in blocks.items()}


# Skipped as they are: quoted strings and identifiers, dollar quotes, comments, `::` casts.
# A positional `$n` is refused (a query names its parameters); `:name` is a parameter.
_TOKENS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\$.*?\$\$|\$(?P<tag>[A-Za-z_]\w*)\$.*?\$(?P=tag)\$|--[^\n]*|/\*.*?\*/|::"
    r"|(?P<positional>\$\d+)|:(?P<param>[A-Za-z_]\w*)", re.DOTALL)


def compile_query(name: str, text: str) -> NamedQuery:
    """`text` with its `:names` numbered $1, $2, ... in order of first appearance."""
    params: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match["positional"]:
            raise ValueError(f"query {name!r} uses the positional {match['positional']}: name its parameters")
        param = match["param"]
        if param is None:
            return match[0]
        if param not in params:
            params.append(param)
        return f"${params.index(param) + 1}"

    return NamedQuery(name, _TOKENS.sub(number, text), tuple(params))
