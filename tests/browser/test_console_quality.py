"""The consoles' quality bar in headless Chromium: paged tables at 1,000 jobs, keyboard navigation, the
URL keeping the filter state, and no serious axe-core violation (tests/browser/assets/axe.min.js,
pinned) in either console, for a service token and for an end user."""

from __future__ import annotations

import asyncio
import time

from tests.support import tokens
from tests.support.factories import create_data
from tests.support.waiting import poll_blocking

from .devtools import DevTools
from .pages import axe_violations, click, key, open_page, texts, visible
from .seeding import manager_of, seed_three_users

SERVICE = tokens.token("ops-console", tokens.SERVICE_ROLE)
THOUSAND = 1000


async def seed_a_thousand(database_url: str, count: int = THOUSAND) -> None:
    async with manager_of(database_url) as manager:
        await manager.bulk_create_jobs([{"user_id": f"user-{n % 7}", **create_data(
            original_filename=f"bulk-{n}.mp4", platform_target=("tiktok", "instagram")[n % 2])}
            for n in range(count)])


def rows(devtools: DevTools) -> list[str]:
    return texts(devtools, "#op-jobs tr", "jobId")


def focused_row(devtools: DevTools) -> str | None:
    return devtools.evaluate("document.activeElement?.dataset?.jobId ?? null")


def test_a_thousand_jobs_paged_keyboard_and_url_state(database_url: str, served: str, browser: DevTools) -> None:
    asyncio.run(seed_a_thousand(database_url))
    open_page(browser, f"{served}/#token={SERVICE}")
    poll_blocking(lambda: browser.evaluate("document.getElementById('op-total').textContent") == f"{THOUSAND} match"
                  and len(rows(browser)) == 50, 30, "the thousand jobs, counted, and a page of them")
    first = rows(browser)
    assert len(first) == 50  # a page, not a thousand rows in the DOM
    started = time.monotonic()
    click(browser, "#op-next")
    poll_blocking(lambda: rows(browser) and rows(browser)[0] not in first, 5, "the next page")
    print(f"next page of 50 of {THOUSAND} rendered in {time.monotonic() - started:.3f} s")  # noqa: T201
    assert len(rows(browser)) == 50 and not set(rows(browser)) & set(first)
    click(browser, "#op-prev")
    poll_blocking(lambda: rows(browser) == first, 5, "the first page again")

    browser.evaluate("(() => { const s = document.querySelector('#op-filters select[name=platform_target]');"
                     " s.value = 'instagram'; s.dispatchEvent(new Event('change', {bubbles: true})); })()")
    poll_blocking(lambda: browser.evaluate("document.getElementById('op-total').textContent") == "500 match", 10,
                  "the instagram half")
    assert "platform_target=instagram" in browser.evaluate("location.search")
    shared = browser.evaluate("location.href")
    open_page(browser, f"{shared}#token={SERVICE}")  # the shared link: the same view
    poll_blocking(lambda: browser.evaluate("document.getElementById('op-total').textContent") == "500 match", 20,
                  "the filter restored from the URL")
    assert browser.evaluate("document.querySelector('#op-filters select[name=platform_target]').value") == "instagram"
    keyboard_walk(browser)


SLOW_FIRST_PAGE_ASKED = """(() => {
  window.slowPageDone = false;
  let delayed = false;
  const plain = window.fetch.bind(window);
  window.fetch = async (url, options) => {
    const response = await plain(url, options);
    if (delayed || !String(url).includes("cursor=")) return response;
    delayed = true;  // only the first page asked for after this: the one Previous leaves behind
    const body = await response.json();
    await new Promise((resolve) => setTimeout(resolve, 400));
    /* marked as the page is handed over: the console renders it in the same task */
    return { ok: response.ok, status: response.status, statusText: response.statusText,
             json: async () => { window.slowPageDone = true; return body; } };
  };
})()"""


def _page_label(devtools: DevTools) -> str:
    return devtools.evaluate("document.getElementById('op-page').textContent")


def test_a_late_answer_for_a_page_left_never_paints_over_the_page_asked_for(
        database_url: str, served: str, browser: DevTools) -> None:
    """Next, then Previous before the next page has arrived: the page Previous asked for stays. A live refresh
    started before a click races the same way."""
    asyncio.run(seed_a_thousand(database_url, 120))
    open_page(browser, f"{served}/#token={SERVICE}")
    poll_blocking(lambda: browser.evaluate("document.getElementById('op-total').textContent") == "120 match"
                  and len(rows(browser)) == 50, 30, "the jobs, counted, and a page of them")
    first = rows(browser)
    click(browser, "#op-next")
    poll_blocking(lambda: _page_label(browser).startswith("page 2") and rows(browser)[0] not in first, 5,
                  "the second page")
    second = rows(browser)
    browser.evaluate(SLOW_FIRST_PAGE_ASKED)
    click(browser, "#op-next")  # page 3, answered late
    click(browser, "#op-prev")  # back to page 2 before it arrives
    poll_blocking(lambda: browser.evaluate("window.slowPageDone"), 10, "the late answer for page 3")
    assert _page_label(browser).startswith("page 2") and rows(browser) == second


def keyboard_walk(browser: DevTools) -> None:
    """Arrows move along the job rows, Enter opens the row's trail in the audit tab, arrows move between tabs."""
    listed = rows(browser)
    browser.evaluate("document.querySelector('#op-jobs tr').focus()")
    key(browser, "ArrowDown", 40)
    key(browser, "ArrowDown", 40)
    assert focused_row(browser) == listed[2]
    key(browser, "ArrowUp", 38)
    assert focused_row(browser) == listed[1]
    key(browser, "Enter", 13)  # opens the job's trail in the audit console
    poll_blocking(lambda: set(texts(browser, "#audit-events tr", "jobId")) == {listed[1]}, 10, "the job's events")
    assert visible(browser, "#audit-events tr") and visible(browser, "#audit-timeline")
    assert browser.evaluate("document.getElementById('view-audit').hidden") is False
    assert f"job_id={listed[1]}" in browser.evaluate("location.search")
    browser.evaluate("document.getElementById('tab-audit').focus()")
    key(browser, "ArrowLeft", 37)
    assert browser.evaluate("document.activeElement.id") == "tab-jobs"
    assert browser.evaluate("document.getElementById('view-jobs').hidden") is False


def test_axe_finds_no_serious_violation_in_either_console(database_url: str, served: str, browser: DevTools) -> None:
    asyncio.run(seed_three_users(database_url))
    for token in (SERVICE, tokens.token("alice")):
        open_page(browser, f"{served}/#token={token}")
        poll_blocking(lambda: len(texts(browser, "#op-jobs tr, #jobs tr")) > 0, 20, "the job list")
        found = axe_violations(browser)
        assert found == [], found
        click(browser, "#tab-audit")
        poll_blocking(lambda: len(texts(browser, "#audit-events tr")) > 0, 10, "the audit search")
        click(browser, "#audit-events tr")
        poll_blocking(lambda: len(texts(browser, "#audit-timeline li")) > 0, 10, "a timeline")
        assert visible(browser, "#audit-timeline li") and not visible(browser, "#view-jobs")
        found = axe_violations(browser)
        assert found == [], found
