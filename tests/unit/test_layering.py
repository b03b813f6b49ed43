"""Who may import whom. The rule:

1. Dependencies point one way: `videojobs -> listeners -> store -> statemachine`. A package
   never imports one to its left.
2. The adapters, `videojobs/http/` and `videojobs/cli/`, import only `videojobs` (the manager,
   its models, its errors and its services) and third-party libraries: never `store`,
   `listeners` or `statemachine` directly. What they need from below, `videojobs` offers.

Every import statement counts, also one inside a function. The test reads the source (ast);
it needs no database.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["statemachine", "store", "listeners", "videojobs"]  # each may import only those before it
ADAPTERS = ("videojobs/http", "videojobs/cli")
INTERNAL = set(ORDER)


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the module at `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ORDER)
def test_dependencies_point_one_way(package: str) -> None:
    allowed = set(ORDER[:ORDER.index(package) + 1])
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in modules(package) for line, name in imported_packages(path)
             if name in INTERNAL and name not in allowed]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters_import_only_videojobs(adapter: str) -> None:
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in modules(adapter) for line, name in imported_packages(path)
             if name in INTERNAL - {"videojobs"}]
    assert not wrong, "\n".join(wrong)


def test_the_rule_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from store.teams import TeamNotFound\n    import listeners\n")
    assert imported_packages(module) == [(2, "store"), (3, "listeners")]
