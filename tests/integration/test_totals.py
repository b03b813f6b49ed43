"""A total always counts what the rows are drawn from (issue 16, item 2).

For every listing path (Python, `as_user`, HTTP, the CLI, the dashboard's stats API), the
`total` equals the number of rows that paging reaches, under Row Level Security, and the
statistics of the same scope count the same jobs, status by status.

alice and bob share team T; carol is on her own. alice sees her own jobs and T's (bob's team
jobs too), never bob's personal jobs nor carol's.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from uuid import UUID

import httpx

from tests.support.cli import avjm
from tests.support.factories import create_data
from tests.support.http_app import http_settings
from tests.support.tokens import bearer
from videojobs import VideoJobManager
from videojobs.http import create_app

STATUSES = ("queued", "processing", "completed", "failed", "cancelled")


async def populate(manager: VideoJobManager) -> tuple[UUID, dict[UUID, tuple[str, UUID | None, str]]]:
    """The tenants' jobs, some moved on; returns the team and job -> (owner, team, status)."""
    alice, bob, carol = (manager.as_user(u) for u in ("alice", "bob", "carol"))
    team = (await alice.teams.create("studio", "alice")).team_id
    await alice.teams.add_member(team, "bob")
    jobs: dict[UUID, tuple[str, UUID | None, str]] = {}
    for who, name, team_id, count in ((alice, "alice", None, 2), (alice, "alice", team, 3), (bob, "bob", team, 3),
                                      (bob, "bob", None, 2), (carol, "carol", None, 2)):
        for _ in range(count):
            job = await who.create_job(user_id=name, team_id=team_id, **create_data())
            jobs[job.job_id] = (name, team_id, "queued")
    for attempt in await manager.claim_jobs("w", 4):  # the oldest four: alice's two own, two of her team's
        jobs[attempt.job_id] = (*jobs[attempt.job_id][:2], "processing")
    started = [j for j, (_, _, s) in jobs.items() if s == "processing"]
    done = await manager.complete_job(started[0], ["/o.mp4"], 1.0)
    jobs[done.job_id] = (*jobs[done.job_id][:2], "completed")
    failed = await manager.fail_job(started[2], "boom")
    jobs[failed.job_id] = (*jobs[failed.job_id][:2], "failed")
    bob_team_job = next(j for j, (o, t, s) in jobs.items() if o == "bob" and t == team and s == "queued")
    await bob.cancel_job(bob_team_job)
    jobs[bob_team_job] = ("bob", team, "cancelled")
    await manager.get_job_by_id(bob_team_job)  # the projector has caught up with every write
    return team, jobs


def by_status(jobs: dict[UUID, tuple[str, UUID | None, str]], ids: set[UUID]) -> Counter:
    return Counter(jobs[j][2] for j in ids)


def assert_counts(stats, expected: Counter) -> None:
    got = {s: getattr(stats, f"{s}_jobs") for s in STATUSES}
    assert got == {s: expected.get(s, 0) for s in STATUSES}
    assert stats.total_jobs == sum(expected.values())


async def every_page(fetch, limit: int = 2) -> tuple[set[UUID], set[int]]:
    """All rows paging reaches (by cursor), and the totals each page claimed."""
    seen, totals, cursor = [], set(), None
    while True:
        page = await fetch(limit, cursor)
        seen += [job.job_id for job in page.items]
        totals.add(page.total)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)), "a job came twice"
    return set(seen), totals


async def test_python_totals_and_stats_count_the_rows(manager_with_listeners: VideoJobManager) -> None:
    team, jobs = await populate(manager_with_listeners)
    alice = manager_with_listeners.as_user("alice")
    visible = {j for j, (o, t, _) in jobs.items() if o == "alice" or t == team}
    own = {j for j, (o, _, _) in jobs.items() if o == "alice"}
    in_team = {j for j, (_, t, _) in jobs.items() if t == team}
    cases = [
        (lambda n, c: alice.list_jobs(n, cursor=c), visible, alice.get_job_stats()),
        (lambda n, c: alice.get_user_jobs("alice", n, cursor=c), own, alice.get_job_stats(user_id="alice")),
        (lambda n, c: alice.get_team_jobs(team, n, cursor=c), in_team, alice.get_job_stats(team_id=team)),
        (lambda n, c: manager_with_listeners.list_jobs(n, cursor=c), set(jobs), manager_with_listeners.get_job_stats()),
        (lambda n, c: manager_with_listeners.get_user_jobs("bob", n, cursor=c), {j for j, v in jobs.items() if v[0] == "bob"},
         manager_with_listeners.get_job_stats(user_id="bob")),
    ]
    for fetch, expected, stats in cases:
        rows, totals = await every_page(fetch)
        assert rows == expected and totals == {len(expected)}
        assert_counts(await stats, by_status(jobs, expected))
    # Status filters: the total counts the filtered rows.
    for status in STATUSES:
        page = await alice.list_jobs(100, filters={"status": [status]})
        assert page.total == len(page.items) == by_status(jobs, visible)[status]


async def test_http_and_dashboard_totals_and_stats_agree(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    team, jobs = await populate(manager_with_listeners)
    app = create_app(manager_with_listeners, settings=http_settings(database_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vjm.test") as client:
        for scope, expected in (("visible", {j for j, (o, t, _) in jobs.items() if o == "alice" or t == team}),
                                ("own", {j for j, (o, _, _) in jobs.items() if o == "alice"})):
            async def fetch(limit, cursor, scope=scope):
                params = {"limit": limit, "scope": scope, **({"cursor": cursor} if cursor else {})}
                r = await client.get("/api/v1/user/jobs", params=params, headers=bearer("alice"))
                assert r.status_code == 200, r.text
                return _Page(r.json())
            rows, totals = await every_page(fetch)
            assert rows == expected and totals == {len(expected)}, scope
            stats = await client.get("/api/v1/user/jobs/stats", params={"scope": scope}, headers=bearer("alice"))
            assert stats.status_code == 200, stats.text
            assert_counts(_Stats(stats.json()), by_status(jobs, expected))


async def test_cli_list_total_equals_its_rows_and_stats(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    team, jobs = await populate(manager_with_listeners)
    visible = {j for j, (o, t, _) in jobs.items() if o == "alice" or t == team}
    listed = await avjm("jobs", "list", "--as", "alice", "--json", "--limit", "500", "--database-url", database_url,
                        env=dict(os.environ))
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert {UUID(j["job_id"]) for j in page["items"]} == visible and page["total"] == len(visible)
    refused = await avjm("jobs", "list", "--as", "alice", "--user", "bob", "--database-url", database_url,
                         env=dict(os.environ))
    assert refused.returncode != 0 and "own jobs" in refused.stderr and "Traceback" not in refused.stderr


class _Page:
    def __init__(self, body: dict) -> None:
        self.items = [type("Row", (), {"job_id": UUID(i["job_id"])}) for i in body["items"]]
        self.total = body["total"]
        self.next_cursor = body.get("next_cursor")


class _Stats:
    def __init__(self, body: dict) -> None:
        for key, value in body.items():
            setattr(self, key, value)
