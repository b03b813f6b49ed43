"""The browser tests' fixtures: `vjm up` on a free port and headless Chromium (helpers: pages.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.waiting import poll_blocking

from .devtools import DevTools
from .pages import CHROMIUM_FLAGS, chromium_binary, serving


@pytest.fixture
def served(database_url: str) -> Iterator[str]:
    """`vjm up` on a free port against this test's database; yields the base URL."""
    with serving(database_url) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    """Headless Chromium with a DevTools connection to its page."""
    binary = chromium_binary()
    profile = tmp_path / "profile"
    process = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        port = poll_blocking(lambda: port_file.exists() and port_file.read_text().split("\n")[0].strip(), 30,
                             "chromium's DevTools port")
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
        devtools = DevTools(pages[0]["webSocketDebuggerUrl"])
        devtools.browser_url = httpx.get(f"http://127.0.0.1:{port}/json/version").json()["webSocketDebuggerUrl"]
        yield devtools
        devtools.close()
    finally:
        process.terminate()
        process.wait(10)


