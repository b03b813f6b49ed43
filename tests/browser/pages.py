"""What the browser tests share: `vjm up` on a free port, and DOM helpers over the DevTools protocol.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import tokens
from tests.support.cli import VJM, environment_without
from tests.support.waiting import poll_blocking

from .devtools import DevTools

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AXE = Path(__file__).with_name("assets") / "axe.min.js"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1400,1100")


def chromium_binary() -> str:
    """The Chromium executable, or skip the test saying why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium not installed: `apt-get install -y chromium` (Debian) to run the dashboard test")
    return found


@contextlib.contextmanager
def serving(database_url: str, **env: str) -> Iterator[str]:
    """`vjm up` on a free port against `database_url` (with `env` added); yields the base URL."""
    environment = environment_without("VJM_DATABASE_URL", VJM_JWT_SECRET=tokens.TEST_JWT_SECRET, VJM_LOG_JSON="1",
                                      **env)
    process = subprocess.Popen([VJM, "up", "--port", "0", "--database-url", database_url], env=environment,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = poll_blocking(lambda: process.stdout.readline() or process.poll() is not None, 60, "vjm up")
        assert isinstance(line, str) and "vjm up: serving" in line, f"vjm up did not start: {line!r}"
        yield line.split("serving ")[1].split("/ ")[0]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


CATCH_ERRORS = ("window.vjmPageErrors = [];"
                " addEventListener('error', (e) => window.vjmPageErrors.push(String(e.message)));")


def open_page(devtools: DevTools, url: str) -> None:
    """A fresh page load of `url` (through about:blank: a new hash alone would not reload), which must load
    without an uncaught error (a script that throws while loading leaves the page half wired)."""
    devtools.call("Page.enable")
    devtools.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_ERRORS)
    devtools.call("Page.navigate", url="about:blank")
    devtools.call("Page.navigate", url=url)
    poll_blocking(lambda: devtools.evaluate("!!(window.vjm && document.readyState === 'complete')"), 20,
                  f"the page {url.split('#')[0]} to load")
    assert devtools.evaluate("window.vjmPageErrors || []") == [], "the page threw while it loaded"


def js(devtools: DevTools, expression: str) -> Any:
    """The JSON value of an expression in the page."""
    raw = devtools.evaluate(f"JSON.stringify({expression})")
    return None if raw is None else json.loads(raw)


def texts(devtools: DevTools, selector: str, attribute: str | None = None) -> list[str]:
    """The text (or a data attribute) of every element matching `selector`."""
    pick = f"e.dataset.{attribute}" if attribute else "e.innerText"
    return js(devtools, f"[...document.querySelectorAll({json.dumps(selector)})].map(e => {pick})") or []


def visible(devtools: DevTools, selector: str) -> bool:
    """Whether the first element matching `selector` is rendered (neither it nor an ancestor hidden)."""
    return bool(devtools.evaluate(f"document.querySelector({json.dumps(selector)})?.checkVisibility() ?? false"))


def click(devtools: DevTools, selector: str) -> None:
    """Click the first element matching `selector` (it must exist)."""
    found = devtools.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                              " if (!e) return false; e.click(); return true; })()")
    assert found, f"nothing matches {selector}"


def key(devtools: DevTools, name: str, code: int) -> None:
    """Press and release a key in the focused element."""
    for kind in ("keyDown", "keyUp"):
        devtools.call("Input.dispatchKeyEvent", type=kind, key=name, code=name, windowsVirtualKeyCode=code,
                      **({"text": "\r"} if name == "Enter" and kind == "keyDown" else {}))


def screenshot(devtools: DevTools, name: str, *, full: bool = False) -> Path:
    """Save the page (`full`: all of it, not only the window) as test-artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    options: dict[str, Any] = {"format": "png"}
    if full:
        size = devtools.call("Page.getLayoutMetrics")["cssContentSize"]
        options.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                          "height": size["height"], "scale": 1})
    path.write_bytes(base64.b64decode(devtools.call("Page.captureScreenshot", **options)["data"]))
    return path


def axe_violations(devtools: DevTools) -> list[dict[str, Any]]:
    """axe-core (the pinned copy in tests/browser/assets) run on the page: its serious and critical violations."""
    if not devtools.evaluate("!!window.axe"):
        devtools.evaluate(AXE.read_text())
    result = devtools.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify("
                               "r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
                               " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary)}))))")
    return [v for v in json.loads(result) if v["impact"] in ("serious", "critical")]
