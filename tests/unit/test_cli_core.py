"""The `vjm` console script's usage errors and help, run as a user would, with no database."""

from __future__ import annotations

from tests.support.cli import vjm


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


def test_vjm_up_settles_its_heap_once_serving() -> None:
    """What start-up made leaves the collector's view (gc.freeze), so full collections under load stay short."""
    import subprocess
    import sys

    code = ("import gc; from videojobs.cli.up import settle_the_heap; before = gc.get_freeze_count(); "
            "settle_the_heap(); print(before, gc.get_freeze_count(), gc.get_threshold()[0])")
    before, frozen, threshold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                               check=True, timeout=60).stdout.split()
    assert int(before) == 0 and int(frozen) > 10_000 and int(threshold) > 700
