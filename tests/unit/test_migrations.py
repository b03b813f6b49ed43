"""The SQL files ship in the wheel and are found there (building the wheel needs no database)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from store.sqlfiles import sql_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sql_files_ship_inside_the_wheel_and_are_found_there(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    wheel = next(out.glob("vjm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for kind in ("schema", "migrations", "queries"):
        for path in (sql_dir() / kind).glob("*.sql"):
            assert f"store/sql/{kind}/{path.name}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    found = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
         "from store.sqlfiles import sql_dir; print(sql_dir())", str(site)],
        check=True, capture_output=True, text=True).stdout.strip()
    assert found == str(site / "store" / "sql")
