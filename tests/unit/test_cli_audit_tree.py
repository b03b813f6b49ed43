"""`vjm audit` help and usage errors: the real console script in a subprocess, no database.

The audit commands at work on a database are in tests/acceptance/test_cli_audit_tree.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import vjm


@pytest.mark.parametrize("action", ["keygen", "seal", "sign-head", "prove", "check-proof", "consistency"])
def test_every_audit_tree_command_has_help(action: str) -> None:
    result = vjm("audit", action, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: vjm audit") and "--help" in result.stdout


def test_sign_head_without_a_key_is_a_usage_error(tmp_path: Path) -> None:
    result = vjm("audit", "sign-head", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2 and "no signing key" in result.stderr and "Traceback" not in result.stderr
