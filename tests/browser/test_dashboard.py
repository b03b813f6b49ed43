"""The web dashboard in headless Chromium: a job created through the API appears live, without a reload.

`vjm up` serves the API and the dashboard (uvicorn, a free port on 127.0.0.1) against this
test's database; Chromium is driven over the DevTools protocol (tests/browser/devtools.py).
A screenshot is saved as test-artifacts/dashboard.png.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx

from tests.support import tokens
from tests.support.factories import create_data
from tests.support.waiting import poll_blocking

from .devtools import DevTools
from .pages import screenshot


async def seed(database_url: str) -> dict[str, str]:
    """alice: a completed, a failed, a processing and a queued job; bob: one job alice must not see."""
    from videojobs import Settings, connect

    async with connect(settings=Settings(database_url=database_url), listeners=False) as manager:
        ids = {}
        for name, platform in (("completed", "youtube_shorts"), ("failed", "instagram"), ("processing", "tiktok"),
                               ("queued", "instagram")):
            job = await manager.create_job(user_id="alice", **create_data(original_filename=f"{name}-cut.mp4",
                                                                          platform_target=platform))
            ids[name] = str(job.job_id)
        for name in ("completed", "failed", "processing"):
            attempt = await manager.start_processing(ids[name], "worker-1")
            await manager.report_progress(ids[name], attempt.attempt, 50.0, 2, actor="worker-1")
            if name == "completed":
                await manager.complete_job(ids[name], ["/out/1.mp4"], 3.5, attempt.attempt, actor="worker-1")
            elif name == "failed":
                await manager.fail_job(ids[name], "unsupported codec", attempt.attempt, actor="worker-1")
        ids["bob"] = str((await manager.create_job(user_id="bob", **create_data(original_filename="bob-secret.mov"))).job_id)
    return ids


def rows(devtools: DevTools) -> list[str]:
    return devtools.evaluate("[...document.querySelectorAll('#jobs tr')].map(r => r.dataset.jobId)") or []


def test_a_job_created_through_the_api_appears_within_two_seconds(database_url: str, served: str,
                                                                  browser: DevTools) -> None:
    ids = asyncio.run(seed(database_url))
    token = tokens.token("alice")
    browser.call("Page.enable")
    browser.call("Page.navigate", url=f"{served}/#token={token}")
    poll_blocking(lambda: browser.evaluate("!!(window.vjm && window.vjm.connected)"), 20, "the live stream")
    alice = {ids[k] for k in ("completed", "failed", "processing", "queued")}
    poll_blocking(lambda: alice <= set(rows(browser)), 20, "alice's jobs in the table")
    assert ids["bob"] not in rows(browser), "the dashboard shows a job the token may not see"

    started = time.monotonic()
    response = httpx.post(f"{served}/api/v1/process", headers={"Authorization": f"Bearer {token}"},
                          json=create_data(original_filename="live-upload.mp4", platform_target="tiktok"))
    assert response.status_code == 201, response.text
    new_id = response.json()["job_id"]
    poll_blocking(lambda: new_id in rows(browser), 2.0, "the new job to appear without a reload")
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert browser.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded

    counters = poll_blocking(lambda: _counters(browser) if _counters(browser).get("total") == "5" else None, 5,
                          "the counters to include the new job")
    assert (counters["queued"], counters["completed"], counters["failed"], counters["processing"]) == (
        "2", "1", "1", "1")
    browser.evaluate(f"document.querySelector('tr[data-job-id=\"{ids['failed']}\"]').click()")
    poll_blocking(lambda: browser.evaluate("document.querySelectorAll('#history li').length") == 4, 5, "the history")
    history = browser.evaluate("document.getElementById('history').innerText")
    assert "fail" in history and "unsupported codec" in history  # the failure's text, not only its state
    assert browser.evaluate("document.querySelectorAll('#chart rect').length") > 10
    # The chart fills its panel: drawn as wide as the panel, not a 640-wide picture scaled into it.
    widths = json.loads(browser.evaluate(
        "JSON.stringify([document.getElementById('chart').clientWidth,"
        " document.querySelector('#chart svg').viewBox.baseVal.width])"))
    assert widths[0] > 0 and abs(widths[0] - widths[1]) <= 2, widths
    # A finished job's progress bar has its status's colour, not processing-yellow.
    colours = json.loads(browser.evaluate(
        "JSON.stringify(['completed', 'processing'].map(s => getComputedStyle(document.querySelector("
        "`tr[data-job-id=\"${window.vjmIds[s]}\"] .bar i`)).backgroundColor))".replace(
            "window.vjmIds", json.dumps({k: ids[k] for k in ("completed", "processing")}))))
    assert colours[0] != colours[1], colours
    # The scope text is not clipped, and times follow the CLI's convention (ISO 8601, UTC, 'Z').
    assert browser.evaluate("(() => { const s = document.querySelector('select[name=scope]');"
                            " return s.scrollWidth <= s.clientWidth + 1; })()")
    created = browser.evaluate(f"document.querySelector('tr[data-job-id=\"{ids['queued']}\"]').lastChild.textContent")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created), created

    screenshot(browser, "dashboard")


def _counters(devtools: DevTools) -> dict[str, str]:
    raw = devtools.evaluate("JSON.stringify(Object.fromEntries([...document.querySelectorAll('.counter')]"
                            ".map(c => [c.dataset.status, c.querySelector('.n').textContent])))")
    return json.loads(raw or "{}")


def test_a_service_sees_the_workers_panel_and_an_end_user_does_not(served: str, browser: DevTools) -> None:
    service = tokens.token("render-fleet", tokens.SERVICE_ROLE)
    for worker_id, stopped in (("encoder-1:42:abc", False), ("encoder-2:7:def", True)):
        beat = {"worker_id": worker_id, "host": "encoder", "pid": 42, "concurrency": 4, "running": 1,
                "platforms": ["tiktok"], "version": "0.1.0", "lease_seconds": 60, "stopped": stopped}
        answer = httpx.post(f"{served}/api/v1/processor/workers", json=beat,
                            headers={"Authorization": f"Bearer {service}"})
        assert answer.status_code == 204, answer.text
    browser.call("Page.enable")
    browser.call("Page.navigate", url=f"{served}/#token={service}")
    shown = "[...document.querySelectorAll('#workers tr')].map(r => r.dataset.workerId + ' ' + r.children[1].innerText)"
    poll_blocking(lambda: json.loads(browser.evaluate(f"JSON.stringify({shown})") or "[]") == [
        "encoder-1:42:abc running", "encoder-2:7:def stopped"], 10, "the workers panel")
    assert browser.evaluate("document.getElementById('workers-title').textContent") == "1 running"
    browser.call("Page.navigate", url="about:blank")  # a new page load (a new hash alone would not reload)
    browser.call("Page.navigate", url=f"{served}/#token={tokens.token('alice')}")
    poll_blocking(lambda: browser.evaluate("!!(window.vjm && window.vjm.claims && window.vjm.claims.sub === 'alice')"),
                  10, "alice signed in")
    assert browser.evaluate("document.getElementById('workers-card').hidden") is True
