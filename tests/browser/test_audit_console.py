"""The auditor's console in headless Chromium: a search by actor returns what find_events returns, the
export downloads those events, "verify chain" says ok and then broken after a superuser edits an event,
a job's timeline and the job as of an instant; and an end user's token sees only their own rows and
events in either console."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg

from tests.support import tokens
from tests.support.waiting import poll_blocking

from .devtools import DevTools
from .pages import click, js, open_page, screenshot, texts, visible
from .seeding import manager_of, seed_three_users

SERVICE = tokens.token("auditor", tokens.SERVICE_ROLE)


async def find_positions(database_url: str, **filters) -> list[int]:
    async with manager_of(database_url) as manager:
        page = await manager.audit.find_events(limit=1000, **filters)
    return [e.position for e in page.items]


def positions(devtools: DevTools) -> list[int]:
    return [int(p) for p in texts(devtools, "#audit-events tr", "position")]


def verdict(devtools: DevTools) -> str:
    return devtools.evaluate("document.getElementById('audit-verify').textContent")


@contextlib.contextmanager
def downloads_to(devtools: DevTools, folder: Path) -> Iterator[None]:
    """Downloads go to `folder` without asking, while the block runs (a command of the browser target,
    whose session is kept open meanwhile)."""
    assert devtools.browser_url
    browser = DevTools(devtools.browser_url)
    try:
        browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(folder))
        yield
    finally:
        browser.close()


def test_search_by_actor_export_timeline_and_verify_chain(database_url: str, served: str, browser: DevTools,
                                                          tmp_path: Path) -> None:
    seeded = asyncio.run(seed_three_users(database_url))
    expected = asyncio.run(find_positions(database_url, actor="worker-1"))
    assert len(expected) > 10
    open_page(browser, f"{served}/?view=audit&actor=worker-1#token={SERVICE}")
    poll_blocking(lambda: positions(browser) == expected, 10, "the search by actor to equal find_events")
    assert set(texts(browser, "#audit-events tr td:nth-child(7)")) == {"worker-1"}
    assert visible(browser, "#audit-events tr") and not visible(browser, "#view-jobs")
    assert "actor=worker-1" in browser.evaluate("location.search")

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    exported = downloads / "vjm-events.jsonl"
    with downloads_to(browser, downloads):
        click(browser, "#audit-export-jsonl")
        poll_blocking(lambda: exported.exists() and exported.read_text().endswith("\n"), 10, "the exported file")
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [e["position"] for e in lines] == expected and {e["actor"] for e in lines} == {"worker-1"}

    timeline_and_chain(browser, database_url, next(j["id"] for j in seeded if j["status"] == "failed"))


def timeline_and_chain(browser: DevTools, database_url: str, failed: str) -> None:
    """The failed job's timeline and the job as of just after its creation; the chain ok, then broken."""
    click(browser, f"#audit-events tr[data-job-id=\"{failed}\"]")
    poll_blocking(lambda: len(texts(browser, "#audit-timeline li")) == 3, 5, "the job's timeline")
    assert "unsupported codec" in browser.evaluate("document.getElementById('audit-timeline').innerText")
    created_at = asyncio.run(_created_at(database_url, failed))
    browser.evaluate("(() => { const f = document.getElementById('audit-asof'); f.as_of.value = "
                     f"{json.dumps((created_at + timedelta(milliseconds=1)).strftime('%Y-%m-%dT%H:%M:%S.%f')[:23])};"
                     " f.requestSubmit(); })()")
    poll_blocking(lambda: "queued" in browser.evaluate("document.getElementById('audit-asof-result').innerText"), 5,
                  "the job as it was just after its creation")

    click(browser, "#audit-verify-all")
    poll_blocking(lambda: verdict(browser).startswith("ok"), 10, "verify: ok")
    assert visible(browser, "#audit-verify") and visible(browser, "#audit-timeline li")
    screenshot(browser, "audit-console", full=True)
    asyncio.run(_tamper(database_url, failed))
    click(browser, "#audit-verify-job")
    poll_blocking(lambda: verdict(browser).startswith("BROKEN"), 10, "verify: broken")
    assert failed in verdict(browser) and "version 3" in verdict(browser)
    assert browser.evaluate("document.getElementById('audit-verify').dataset.ok") == "false"


async def _created_at(database_url: str, job_id: str):
    async with manager_of(database_url) as manager:
        return (await manager.get_job_history(job_id))[0].occurred_at


async def _tamper(database_url: str, job_id: str) -> None:
    """What only a superuser can do: rewrite a stored event (past the append-only trigger)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ALTER TABLE vjm.job_events DISABLE TRIGGER job_events_append_only")
        await conn.execute("UPDATE vjm.job_events SET data = '{\"error\": \"all good\"}' "
                           "WHERE job_id = $1::uuid AND type = 'fail'", job_id)
        await conn.execute("ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only")
    finally:
        await conn.close()


def test_an_end_user_sees_only_their_own_rows_and_events_in_either_console(database_url: str, served: str,
                                                                          browser: DevTools) -> None:
    seeded = asyncio.run(seed_three_users(database_url))
    alice = {j["id"] for j in seeded if j["user"] == "alice"}
    open_page(browser, f"{served}/#token={tokens.token('alice')}")
    poll_blocking(lambda: set(texts(browser, "#jobs tr", "jobId")) == alice, 20, "alice's jobs, and only hers")
    assert browser.evaluate("document.getElementById('view-operator').hidden") is True
    assert browser.evaluate("document.getElementById('tab-jobs').textContent") == "Jobs"

    click(browser, "#tab-audit")
    expected = asyncio.run(_alice_positions(database_url))
    poll_blocking(lambda: positions(browser) == expected, 10, "alice's audit trail")
    assert visible(browser, "#audit-events tr") and not visible(browser, "#jobs tr")
    assert set(texts(browser, "#audit-events tr", "jobId")) == alice
    browser.evaluate("(() => { const f = document.getElementById('audit-filters'); f.user_id.value = 'bob';"
                     " f.requestSubmit(); })()")
    poll_blocking(lambda: browser.evaluate("document.getElementById('audit-empty').hidden === false"), 10,
                  "no event of bob's")
    assert positions(browser) == []
    click(browser, "#audit-verify-all")
    poll_blocking(lambda: verdict(browser).startswith("ok"), 10, "verify of what alice may read")
    assert f"{len(expected)} event(s) checked" in verdict(browser)
    assert js(browser, "window.vjmOperator.overview") is None  # the operator endpoints were never asked


async def _alice_positions(database_url: str) -> list[int]:
    async with manager_of(database_url) as manager:
        page = await manager.as_user("alice").audit.find_events(limit=1000)
    return [e.position for e in page.items]
