"""The `vjm` console script, run as a user would: real process, real Postgres, exit codes."""

from __future__ import annotations

import json

from tests.support.cli import vjm


def test_migrate_applies_then_reports_nothing_pending(empty_database_url: str) -> None:
    first = vjm("migrate", "--database-url", empty_database_url, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["applied_now"] == report["applied"] and report["pending"] == []
    second = json.loads(vjm("migrate", "--database-url", empty_database_url, "--json").stdout)
    assert second["applied_now"] == [] and second["applied"] == report["applied"]


