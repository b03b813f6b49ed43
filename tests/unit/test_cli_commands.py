"""`vjm` help, usage errors and an unreachable database: the real console script in a subprocess, no database.

The commands that work on a database are in tests/acceptance/test_cli_commands.py.
"""

from __future__ import annotations

import time

import pytest

from tests.support.cli import vjm

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.mark.parametrize("command", [
    [], ["up"], ["demo"], ["listen"], ["watch"], ["jobs"], ["jobs", "list"], ["jobs", "show"], ["jobs", "history"],
    ["jobs", "cancel"], ["stats"], ["migrate"], ["projections"], ["projections", "rebuild"],
    ["projections", "verify"], ["maintenance"], ["maintenance", "reset-stuck"], ["audit"], ["audit", "verify"],
    ["queue"], ["queue", "show"], ["queue", "pause"], ["queue", "resume"], ["queue", "cap"], ["queue", "history"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = vjm(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: vjm") and "--help" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["jobs", "list", "--limit", "many"], "invalid int value"),
    (["jobs", "list", "--status", "exploded"], "invalid choice"),
    (["jobs"], "required: ACTION"),
    (["maintenance", "reset-stuck", "--older-than", "soon"], "is not a duration"),
    (["maintenance", "reset-stuck", "--older-than", "15"], "'15' has no unit: say 15s, 15m or 15h"),
    (["jobs", "list", "--user", "a", "--team", "b"], "give --user or --team, not both"),
    (["stats", "--user", "a", "--team", "b"], "give --user or --team, not both"),
    (["watch", "--rows", "0"], "must be positive"),
    (["jobs", "cancel"], "give job ids or --status"),
    (["up", "--workers", "0"], "argument --workers: 0 is not between 1 and 64"),
    (["up", "--workers", "65"], "argument --workers: 65 is not between 1 and 64"),
    (["up", "--workers", "two"], "argument --workers: 'two' is not a number of processes"),
])
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    result = vjm(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [
    ["jobs", "list"], ["jobs", "show", "01a22269-c5f0-70f7-b178-304bfe35888f"], ["stats"],
    ["projections", "verify"], ["projections", "rebuild"], ["audit", "verify"],
    ["maintenance", "reset-stuck"], ["listen"], ["watch"], ["up", "--port", "0"],
    ["up", "--port", "0", "--workers", "2"], ["demo"]])
def test_an_unreachable_database_is_a_clear_error(command: list[str]) -> None:
    started = time.monotonic()
    result = vjm(*command, "--database-url", UNREACHABLE, timeout=60)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "error: database unavailable" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
