"""Find the sql/ directory: inside an installed wheel (store/sql) or in a checkout (./sql)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def sql_dir() -> Path:
    """The directory holding schema/, migrations/ and queries/."""
    for candidate in (_HERE / "sql", _HERE.parent / "sql"):
        if (candidate / "queries").is_dir() and (candidate / "schema").is_dir():
            return candidate
    raise FileNotFoundError(f"vjm sql/ directory not found near {_HERE}")


@cache
def load_queries() -> dict[str, str]:
    """All named queries from sql/queries/*.sql; a name defined twice is an error."""
    queries: dict[str, str] = {}
    for path in sorted((sql_dir() / "queries").glob("*.sql")):
        for name, body in _parse(path.read_text()).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = body
    return queries


def _parse(text: str) -> dict[str, str]:
    """Blocks headed `-- name --` plus one line of description."""
    queries: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- ") and stripped.endswith(" --") and len(stripped) > 6:
            if name:
                queries[name] = _body(lines)
            name, lines = stripped[3:-3].strip(), []
        elif name is not None:
            lines.append(line)
    if name:
        queries[name] = _body(lines)
    return queries


def _body(lines: list[str]) -> str:
    code = [ln for ln in lines if not ln.lstrip().startswith("--")]
    return "\n".join(code).strip().rstrip(";")
