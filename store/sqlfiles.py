"""Find the sql/ directory: inside an installed wheel (store/sql) or in a checkout (./sql).

store/queries.py runs the named queries of its queries/; store/migrations.py applies schema/ and migrations/.
"""

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
