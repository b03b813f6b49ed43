"""The house style, checked (../shared/STYLE.md, docs/ARCHITECTURE.md): small modules and short functions in the
packages users import. A module holds at most 300 lines; a function's body (its docstring and signature aside) at
most 30."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("statemachine", "store", "listeners", "videojobs")
MAX_MODULE_LINES, MAX_BODY_LINES = 300, 30


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
        body = body[1:]  # the docstring
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def test_no_module_is_over_300_lines() -> None:
    long = [f"{p.relative_to(ROOT)}: {n}" for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, long


def test_no_function_body_is_over_30_lines() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > MAX_BODY_LINES:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {_body_lines(node)}")
    assert not long, long


def test_the_check_sees_a_long_body(tmp_path: Path) -> None:
    source = "def f():\n    '''doc'''\n" + "".join(f"    x{i} = {i}\n" for i in range(31))
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef) and _body_lines(node) == 31
