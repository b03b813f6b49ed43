"""The operator console (a service token) in headless Chromium: every job's counters equal get_job_stats(),
a job created and processed updates the counters and its row in under 2 s without a reload, a stuck job
and a worker that goes lost show up, and bulk retry retries exactly the failed jobs of the filter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import tokens
from tests.support.factories import create_data
from tests.support.waiting import poll_blocking

from .devtools import DevTools
from .pages import click, js, open_page, screenshot, serving, texts, visible
from .seeding import job_stats, manager_of, seed_three_users

SERVICE = tokens.token("ops-console", tokens.SERVICE_ROLE)
HEADERS = {"Authorization": f"Bearer {SERVICE}"}


@pytest.fixture
def served_quick_stuck(database_url: str) -> Iterator[str]:
    """`vjm up` whose stuck timeout is 1 s and whose detector would next run in an hour: a job left
    processing is listed as stuck and stays so for the test."""
    with serving(database_url, VJM_STUCK_TIMEOUT_SECONDS="1", VJM_STUCK_INTERVAL_SECONDS="3600") as url:
        yield url


def counters(devtools: DevTools) -> dict[str, int]:
    return {k: int(v) for k, v in (js(devtools, "Object.fromEntries([...document.querySelectorAll("
                                               "'#op-counters .counter')].map(c => [c.dataset.status,"
                                               " c.querySelector('.n').textContent]))") or {}).items()}


def expected_counters(stats) -> dict[str, int]:
    return {"queued": stats.queued_jobs, "processing": stats.processing_jobs, "completed": stats.completed_jobs,
            "failed": stats.failed_jobs, "cancelled": stats.cancelled_jobs, "total": stats.total_jobs}


def row_status(devtools: DevTools, job_id: str) -> str | None:
    return js(devtools, f"document.querySelector('#op-jobs tr[data-job-id=\"{job_id}\"] .badge')?.textContent ?? null")


def test_operator_counts_equal_get_job_stats_and_a_job_moves_live(database_url: str, served: str,
                                                                  browser: DevTools) -> None:
    seeded = asyncio.run(seed_three_users(database_url))
    open_page(browser, f"{served}/#token={SERVICE}")
    poll_blocking(lambda: browser.evaluate("!!(window.vjm && window.vjm.connected)"), 20, "the live stream")
    stats = poll_blocking(lambda: (s := asyncio.run(job_stats(database_url))).total_jobs == len(seeded) and s, 20,
                          "the projection of the seeded jobs")
    poll_blocking(lambda: counters(browser) == expected_counters(stats), 10, "the counters to equal get_job_stats()")
    platforms = {row[0]: [int(n) for n in row[1:]] for row in js(
        browser, "[...document.querySelectorAll('#op-platforms tr')].map(r => [...r.children].map(c => c.textContent))")}
    assert platforms == {p.platform_target: [p.queued_jobs, p.processing_jobs, p.completed_jobs, p.failed_jobs,
                                             p.cancelled_jobs, p.total_jobs] for p in stats.by_platform}
    users = set(texts(browser, "#op-jobs tr td:nth-child(3)"))
    assert users == {"alice", "bob", "carol"}, users  # every tenant's jobs, no user named
    assert browser.evaluate("document.getElementById('op-first-run').hidden") is True
    assert all(visible(browser, s) for s in ("#op-counters .counter", "#op-platforms tr", "#op-jobs tr", "#op-lag"))
    assert not visible(browser, "#view-audit") and not visible(browser, "#view-user")
    screenshot(browser, "operator-console", full=True)

    started = time.monotonic()
    created = httpx.post(f"{served}/api/v1/process", headers=HEADERS,
                         json={**create_data(original_filename="live.mp4"), "user_id": "dave"})
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    poll_blocking(lambda: row_status(browser, job_id) == "queued" and counters(browser)["total"] == len(seeded) + 1,
                  2.0 - (time.monotonic() - started), "the new job's row and the counters, within 2 s")
    print(f"created: row and counters after {time.monotonic() - started:.3f} s")  # noqa: T201
    for status, body in (("processing", {"status": "processing", "worker_id": "encoder-9"}),
                         ("completed", {"status": "completed", "output_paths": ["/out/live.mp4"]})):
        before = counters(browser)[status]
        started = time.monotonic()
        moved = httpx.patch(f"{served}/api/v1/jobs/{job_id}", headers=HEADERS, json=body)
        assert moved.status_code == 200, moved.text
        poll_blocking(lambda s=status, b=before: row_status(browser, job_id) == s and counters(browser)[s] == b + 1,
                      2.0 - (time.monotonic() - started), f"the row and the counters to say {status}, within 2 s")
        print(f"{status}: row and counters after {time.monotonic() - started:.3f} s")  # noqa: T201
    assert browser.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded
    final = asyncio.run(job_stats(database_url))
    poll_blocking(lambda: counters(browser) == expected_counters(final), 5, "the counters to equal get_job_stats()")


def test_first_run_then_a_stuck_job_and_a_worker_that_goes_lost(database_url: str, served_quick_stuck: str,
                                                                 browser: DevTools) -> None:
    served = served_quick_stuck
    open_page(browser, f"{served}/#token={SERVICE}")
    poll_blocking(lambda: browser.evaluate("document.getElementById('op-first-run').hidden === false"), 10,
                  "the first-run help on an empty database")
    help_text = browser.evaluate("document.getElementById('op-first-run').innerText")
    assert "/api/v1/process" in help_text and "vjm worker" in help_text and served in help_text
    screenshot(browser, "operator-first-run")

    beat = {"worker_id": "encoder-1:42:abc", "host": "encoder", "pid": 42, "concurrency": 2, "running": 1,
            "platforms": ["tiktok"], "version": "0.1.0", "lease_seconds": 0.5, "stopped": False}
    shown = "[...document.querySelectorAll('#workers tr')].map(r => r.dataset.workerId + ' ' + r.children[1].innerText)"

    def beating_and_shown() -> bool:  # the worker beats (every poll) until the panel lists it running
        answer = httpx.post(f"{served}/api/v1/processor/workers", json=beat, headers=HEADERS)
        assert answer.status_code == 204, answer.text
        return js(browser, shown) == ["encoder-1:42:abc running"]

    poll_blocking(beating_and_shown, 15, "the worker, running", every=0.2)
    poll_blocking(lambda: js(browser, shown) == ["encoder-1:42:abc lost"], 15, "the worker, lost (its beats stopped)")

    async def leave_processing() -> str:
        async with manager_of(database_url) as manager:
            job = await manager.create_job(user_id="alice", **create_data(original_filename="hangs.mp4"))
            await manager.start_processing(job.job_id, "worker-that-hangs")
            return str(job.job_id)

    job_id = asyncio.run(leave_processing())
    poll_blocking(lambda: job_id in texts(browser, "#op-stuck tr", "jobId"), 15, "the job in the stuck panel")
    assert visible(browser, f"#op-stuck tr[data-job-id=\"{job_id}\"]") and visible(browser, "#workers tr")
    assert "time-out 1 s" in browser.evaluate("document.getElementById('op-stuck-title').textContent")
    assert browser.evaluate("document.getElementById('op-first-run').hidden") is True
    screenshot(browser, "operator-stuck-and-lost")


def test_bulk_retry_retries_exactly_the_failed_jobs_of_the_filter(database_url: str, served: str,
                                                                   browser: DevTools) -> None:
    seeded = asyncio.run(seed_three_users(database_url))
    chosen = {j["id"] for j in seeded if j["status"] == "failed" and j["platform"] == "instagram"}
    others = {j["id"] for j in seeded if j["status"] == "failed"} - chosen
    assert len(chosen) == 3 and others
    open_page(browser, f"{served}/?view=jobs&platform_target=instagram#token={SERVICE}")
    poll_blocking(lambda: len(texts(browser, "#op-jobs tr")) == sum(j["platform"] == "instagram" for j in seeded), 20,
                  "the instagram jobs, the filter read from the URL")
    assert visible(browser, "#op-bulk-retry")
    click(browser, "#op-bulk-retry")
    poll_blocking(lambda: browser.evaluate("document.getElementById('confirm').open"), 5, "the confirmation")
    assert "Retry 3 failed job(s)?" in browser.evaluate("document.getElementById('confirm-title').textContent")
    click(browser, "#confirm-ok")
    result = poll_blocking(lambda: js(browser, "window.vjmOperatorJobs.lastBulk"), 10, "the bulk retry's result")
    assert {r["job_id"] for r in result["results"]} == chosen and result["retried"] == 3
    assert "Retried 3 of 3" in browser.evaluate("document.getElementById('op-result').textContent")

    async def statuses() -> dict[str, str]:
        async with manager_of(database_url) as manager:
            return {j["id"]: (await manager.get_job_by_id(j["id"])).status for j in seeded}

    now = asyncio.run(statuses())
    assert {i for i, s in now.items() if s == "queued"} == chosen | {j["id"] for j in seeded if j["status"] == "queued"}
    assert all(now[i] == "failed" for i in others)
    poll_blocking(lambda: all(row_status(browser, i) == "queued" for i in chosen), 5, "the rows, queued again")

    queued = next(j["id"] for j in seeded if j["status"] == "queued" and j["platform"] == "instagram")
    click(browser, f"#op-jobs tr[data-job-id=\"{queued}\"] button[data-action=cancelled]")
    poll_blocking(lambda: browser.evaluate("document.getElementById('confirm').open"), 5, "the confirmation")
    click(browser, "#confirm-ok")
    poll_blocking(lambda: row_status(browser, queued) == "cancelled", 5, "the cancelled job's row")
