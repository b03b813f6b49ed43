"""Every tagged block of README.md is run or says why not (the blocks are run in tests/acceptance/test_readme.py)."""

from __future__ import annotations

from tests.support.readme import README, RUN, blocks


def test_every_block_is_run_or_says_why_not() -> None:
    found = blocks(README.read_text())
    unknown = [(b.line, b.language) for b in found if b.language and b.language not in RUN]
    assert not unknown, f"README blocks in a language this test does not run: {unknown}"
    assert all(b.skipped.strip() for b in found if b.skipped is not None)
    assert {b.language for b in found if b.skipped is None and b.language} == RUN
