"""README.md's fenced blocks: their language, first line, and the reason given when one is not run.

A tagged block preceded by `<!-- readme: no-run (reason) -->` is not run and must say why;
tests/acceptance/test_readme.py runs the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
README = ROOT / "README.md"
RUN = {"python", "sql", "sh"}
NO_RUN = re.compile(r"<!--\s*readme:\s*no-run\s*\((.+)\)\s*-->")


@dataclass(frozen=True)
class Block:
    language: str
    line: int
    code: str
    skipped: str | None  # the reason it is not run


def blocks(text: str) -> list[Block]:
    """The fenced blocks of `text`, with their language, first line and no-run reason."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)\s*", lines[i])
        if not fence:
            i += 1
            continue
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        reason = NO_RUN.search(previous)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        found.append(Block(fence.group(1), i + 1, "\n".join(lines[i + 1:end]) + "\n",
                           reason.group(1) if reason else None))
        i = end + 1
    return found


def runnable(language: str) -> list[Block]:
    """The blocks in `language` that are run (not marked no-run)."""
    return [b for b in blocks(README.read_text()) if b.language == language and b.skipped is None]
