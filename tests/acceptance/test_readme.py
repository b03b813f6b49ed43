"""Every code block of README.md, run against a fresh database, so that the README cannot drift.

- ```python blocks run as scripts (VJM_DATABASE_URL: this test's database);
- ```sql blocks run through psql, one session per block, stopping at the first error;
- ```sh blocks are the HTTP walkthrough: one bash script, in order (they build on each other),
  `set -euo pipefail`, with the server's port made free and `.venv/bin/` pointing at this Python's.

A tagged block preceded by `<!-- readme: no-run (reason) -->` is not run and must say why.
Untagged blocks are output samples and command synopses. Any other language tag fails the
test, so that no block is left out without a decision.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.readme import ROOT, Block, runnable
from tests.support.servers import free_port


def env_for(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VJM_")}
    return {**env, "VJM_DATABASE_URL": database_url, "VJM_LOG_LEVEL": "WARNING", **(extra or {})}


def run(command: list[str], database_url: str, block: Block | None = None, extra_env: dict[str, str] | None = None,
        **kwargs) -> None:
    result = subprocess.run(command, cwd=ROOT, env=env_for(database_url, extra_env), capture_output=True, text=True,
                            timeout=240, **kwargs)
    where = f"README.md line {block.line}" if block else "README.md"
    assert result.returncode == 0 and "Traceback" not in result.stderr, (
        f"{where} failed (exit {result.returncode})\n--- stdout\n{result.stdout[-4000:]}\n"
        f"--- stderr\n{result.stderr[-4000:]}")


@pytest.mark.parametrize("block", runnable("python"), ids=lambda b: f"line{b.line}")
def test_python_block(block: Block, database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code)
    run([sys.executable, str(script)], database_url, block)


def psql() -> str:
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else shutil.which("psql") or "psql"


@pytest.mark.parametrize("block", runnable("sql"), ids=lambda b: f"line{b.line}")
def test_sql_block(block: Block, database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "example.sql"
    script.write_text(block.code)
    run([psql(), "-X", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f", str(script)], database_url, block)


def test_the_http_walkthrough_runs_as_written(database_url: str, tmp_path: Path) -> None:
    run(["bash", str(walkthrough_script(tmp_path))], database_url)


def walkthrough_script(tmp_path: Path) -> Path:
    """The README's sh blocks as one bash script (tests/pooler runs it through PgBouncer too)."""
    steps = runnable("sh")
    assert steps, "no sh blocks"
    script = "\n".join(f"# README.md line {b.line}\n{b.code}" for b in steps)
    script = script.replace(".venv/bin/", f"{Path(sys.executable).parent}/").replace("8765", str(free_port()))
    prelude = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    (tmp_path / "walkthrough.sh").write_text(prelude + script)
    return tmp_path / "walkthrough.sh"
