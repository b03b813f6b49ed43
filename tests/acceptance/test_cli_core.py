"""The `vjm` console script, run as a user would: real process, real Postgres, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VJM = str(Path(sys.executable).with_name("vjm"))


def vjm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([VJM, *args], capture_output=True, text=True, timeout=120, env=env)


def test_migrate_applies_then_reports_nothing_pending(empty_database_url: str) -> None:
    first = vjm("migrate", "--database-url", empty_database_url, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["applied_now"] == report["applied"] and report["pending"] == []
    second = json.loads(vjm("migrate", "--database-url", empty_database_url, "--json").stdout)
    assert second["applied_now"] == [] and second["applied"] == report["applied"]


def test_migrate_against_an_unreachable_database_is_a_clear_error() -> None:
    result = vjm("migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 3
    assert "database unavailable" in result.stderr and "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = vjm("explode")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_help_lists_the_commands() -> None:
    result = vjm("--help")
    assert result.returncode == 0 and "migrate" in result.stdout and "demo" in result.stdout
