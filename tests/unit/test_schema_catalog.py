"""The SQL sources define each object once, read as text (the catalogs of migrated databases are compared in
tests/integration/test_schema_catalog.py)."""

from __future__ import annotations

from store.sqlfiles import sql_dir


def test_each_object_is_defined_once_in_sql() -> None:
    """A function, table, view, index or policy is created in one place of the baseline and the named queries.

    (A migration redefines what it changes, whole: sql/migrations/ is not counted.)
    """
    import re
    created: dict[str, list[str]] = {}
    pattern = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|TABLE|VIEW|INDEX|TRIGGER)\s+([\w.]+)"
                         r"|CREATE POLICY (\w+) ON ([\w.]+)", re.IGNORECASE)
    for path in sorted([*(sql_dir() / "schema").glob("*.sql"), *(sql_dir() / "queries").glob("*.sql")]):
        for match in pattern.finditer(path.read_text()):
            name = match.group(2) or f"{match.group(4)}:{match.group(3)}"
            if name.lower().startswith("vjm.") or ":" in name or match.group(1).upper() in ("INDEX", "TRIGGER"):
                created.setdefault(name.lower(), []).append(path.name)
    assert {name: files for name, files in created.items() if len(files) > 1} == {}
    assert "vjm.append_event" in created and "vjm.guard_append" in created
