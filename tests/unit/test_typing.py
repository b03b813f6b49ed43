"""The packages are typed as a library should be: processors import videojobs into their own typed
code. Each ships py.typed, and mypy (with the pydantic plugin, configured in pyproject.toml) finds
nothing in any of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TYPED = ("statemachine", "store", "listeners", "videojobs")


def test_the_typed_packages_ship_py_typed() -> None:
    for package in TYPED:
        assert (ROOT / package / "py.typed").is_file(), package


def test_mypy_finds_no_error_in_the_typed_packages(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), *TYPED],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
