"""Every `vjm` command run as a user would: the real console script in a subprocess, real Postgres.

Each test checks the output and the exit code (0 ok, 1 problem found, 2 usage, 3 database
unavailable). Data is written through a VideoJobManager with its projector running in this
process; the subprocess is run off the event loop so that projector keeps working meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import avjm, clean_env, finish, first_line_with, spawn
from tests.support.factories import create_data
from videojobs import VideoJobManager

UPLOAD = create_data(original_filename="holiday.mp4")  # the table of jobs is asserted to show it


async def seed(manager: VideoJobManager) -> dict:
    """alice: one completed, one failed, two queued; bob: one queued."""
    done = await manager.create_job(user_id="alice", **UPLOAD)
    attempt = await manager.start_processing(done.job_id, "w1")
    await manager.complete_job(done.job_id, ["/out/1.mp4"], 12.5, attempt.attempt, actor="w1")
    failed = await manager.create_job(user_id="alice", **{**UPLOAD, "platform_target": "instagram"})
    attempt = await manager.start_processing(failed.job_id, "w2")
    await manager.fail_job(failed.job_id, "Invalid video format", attempt.attempt, actor="w2")
    queued = [await manager.create_job(user_id="alice", **{**UPLOAD, "original_filename": f"q{i}.mp4"})
              for i in range(2)]
    bob = await manager.create_job(user_id="bob", **{**UPLOAD, "original_filename": "bob.mov"})
    await manager.get_job_by_id(bob.job_id)  # read-your-writes: the projection has everything
    return {"done": str(done.job_id), "failed": str(failed.job_id), "queued": [str(j.job_id) for j in queued],
            "bob": str(bob.job_id)}


# --- reading jobs ---

async def test_jobs_list_filters_and_prints_json_or_a_table(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    ids = await seed(manager_with_listeners)
    everything = json.loads((await avjm("jobs", "list", "--database-url", database_url, "--json")).stdout)
    assert everything["total"] == 5 and {j["job_id"] for j in everything["items"]} >= {ids["done"], ids["bob"]}
    queued = json.loads((await avjm("jobs", "list", "--status", "queued", "--user", "alice",
                                    "--database-url", database_url, "--json")).stdout)
    assert sorted(j["job_id"] for j in queued["items"]) == sorted(ids["queued"])
    paged = json.loads((await avjm("jobs", "list", "--limit", "2", "--database-url", database_url, "--json")).stdout)
    assert len(paged["items"]) == 2 and paged["next_cursor"]
    table = await avjm("jobs", "list", "--platform", "instagram", "--database-url", database_url)
    assert table.returncode == 0 and "1 job(s)" in table.stdout and "failed" in table.stdout
    assert ids["failed"][-8:] in table.stdout and "holiday.mp4" in table.stdout


async def test_jobs_show_and_history(manager: VideoJobManager, database_url: str) -> None:
    ids = await seed(manager)
    shown = await avjm("jobs", "show", ids["done"], "--database-url", database_url, "--json")
    job = json.loads(shown.stdout)
    assert shown.returncode == 0 and job["status"] == "completed" and job["output_paths"] == ["/out/1.mp4"]
    table = await avjm("jobs", "show", ids["failed"], "--database-url", database_url)
    assert "Invalid video format" in table.stdout and "failed" in table.stdout
    history = json.loads((await avjm("jobs", "history", ids["done"], "--database-url", database_url,
                                     "--json")).stdout)
    assert [e["type"] for e in history] == ["create", "start", "complete"]
    assert [e["actor"] for e in history][1:] == ["w1", "w1"]
    printed = await avjm("jobs", "history", ids["failed"], "--database-url", database_url)
    assert printed.returncode == 0 and "fail" in printed.stdout and "w2" in printed.stdout


async def test_unknown_and_malformed_job_ids(manager: VideoJobManager, database_url: str) -> None:
    await seed(manager)
    missing = await avjm("jobs", "show", "01a22269-c5f0-70f7-b178-304bfe35888f", "--database-url", database_url)
    assert missing.returncode == 1 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    malformed = await avjm("jobs", "history", "not-a-uuid", "--database-url", database_url)
    assert malformed.returncode == 2 and "job_id must be a UUID" in malformed.stderr


async def test_as_a_user_row_level_security_decides(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    ids = await seed(manager_with_listeners)
    bob = json.loads((await avjm("jobs", "list", "--as", "bob", "--database-url", database_url, "--json")).stdout)
    assert [j["job_id"] for j in bob["items"]] == [ids["bob"]]
    hidden = await avjm("jobs", "show", ids["done"], "--as", "bob", "--database-url", database_url)
    assert hidden.returncode == 1 and "not found" in hidden.stderr
    stats = json.loads((await avjm("stats", "--as", "bob", "--database-url", database_url, "--json")).stdout)
    assert stats["total_jobs"] == 1


async def test_stats(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    await seed(manager_with_listeners)
    stats = json.loads((await avjm("stats", "--database-url", database_url, "--json")).stdout)
    assert (stats["total_jobs"], stats["queued_jobs"], stats["completed_jobs"], stats["failed_jobs"]) == (5, 3, 1, 1)
    assert stats["total_processing_time"] >= 12.5 and stats["average_processing_time"] > 0
    alice = json.loads((await avjm("stats", "--user", "alice", "--database-url", database_url, "--json")).stdout)
    assert alice["total_jobs"] == 4
    table = await avjm("stats", "--database-url", database_url)
    assert table.returncode == 0 and "jobs by status" in table.stdout and "instagram" in table.stdout


async def test_bulk_cancel_reports_each_job(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    ids = await seed(manager_with_listeners)
    result = await avjm("jobs", "cancel", *ids["queued"], ids["done"], "--reason", "wrong cut",
                        "--database-url", database_url, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and (report["total"], report["failed"]) == (3, 1)
    refused = [r for r in report["results"] if not r["ok"]]
    assert refused[0]["job_id"] == ids["done"] and "cancel" in refused[0]["error"]
    retried = await avjm("jobs", "retry", "--status", "cancelled", "--database-url", database_url)
    assert retried.returncode == 0 and "retry: 2 of 2 job(s) done, 0 refused" in retried.stdout


# --- maintenance, projections, audit ---

async def test_reset_stuck_requeues_an_idle_processing_job(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    ids = await seed(manager_with_listeners)
    await manager_with_listeners.start_processing(ids["queued"][0], "w-hung")
    await manager_with_listeners.get_job_by_id(ids["queued"][0])
    kept = json.loads((await avjm("maintenance", "reset-stuck", "--older-than", "1h", "--database-url",
                                  database_url, "--json")).stdout)
    assert kept["found"] == 0
    result = await avjm("maintenance", "reset-stuck", "--older-than", "0s", "--database-url", database_url)
    assert result.returncode == 0 and "found 1, re-queued 1" in result.stdout
    history = await manager_with_listeners.get_job_history(ids["queued"][0])
    assert history[-1].type == "time_out" and history[-1].actor == "system:stuck_detector"


async def test_projections_verify_finds_a_tampered_row_and_rebuild_repairs_it(manager_with_listeners: VideoJobManager, pool,
                                                                             database_url: str) -> None:
    ids = await seed(manager_with_listeners)
    clean = await avjm("projections", "verify", "--database-url", database_url)
    assert clean.returncode == 0 and "ok (0 differences)" in clean.stdout
    await pool.execute("UPDATE vjm.jobs SET clip_count = clip_count + 1 WHERE job_id = $1::uuid", ids["bob"])
    dirty = await avjm("projections", "verify", "--database-url", database_url, "--json")
    report = json.loads(dirty.stdout)
    assert dirty.returncode == 1 and not report["ok"] and report["differences"][0]["key"] == ids["bob"]
    rebuilt = await avjm("projections", "rebuild", "--database-url", database_url)
    assert rebuilt.returncode == 0 and "rebuilt:" in rebuilt.stdout and "events replayed" in rebuilt.stdout
    again = await avjm("projections", "verify", "--database-url", database_url)
    assert again.returncode == 0 and "ok (0 differences)" in again.stdout


async def test_audit_verify_exits_1_when_the_chain_is_broken(manager: VideoJobManager, pool,
                                                            database_url: str) -> None:
    ids = await seed(manager)
    ok = await avjm("audit", "verify", "--database-url", database_url)
    assert ok.returncode == 0 and "audit chain verified: ok" in ok.stdout
    async with pool.acquire() as conn:  # a superuser bypasses the append-only trigger on purpose
        await conn.execute("ALTER TABLE vjm.job_events DISABLE TRIGGER job_events_append_only")
        await conn.execute("UPDATE vjm.job_events SET data = '{\"error\": \"all good\"}' "
                           "WHERE job_id = $1::uuid AND type = 'fail'", ids["failed"])
        await conn.execute("ALTER TABLE vjm.job_events ENABLE ALWAYS TRIGGER job_events_append_only")
    broken = await avjm("audit", "verify", "--database-url", database_url)
    assert broken.returncode == 1 and f"BROKEN at job {ids['failed']} version 3" in broken.stdout
    report = json.loads((await avjm("audit", "verify", "--database-url", database_url, "--json")).stdout)
    assert report["ok"] is False and report["first_broken_job_id"] == ids["failed"]


async def test_audit_verify_of_a_job_that_does_not_exist_exits_1(database_url: str) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    result = await avjm("audit", "verify", "--job", missing, "--database-url", database_url)
    assert result.returncode == 1 and f"job {missing} not found" in result.stderr
    assert "ok" not in result.stdout and "Traceback" not in result.stderr


# --- services: listen, watch, up ---

async def test_listen_projects_new_events_and_stops_on_sigterm(database_url: str) -> None:
    from videojobs import Settings, connect

    process = spawn("listen", "--database-url", database_url)
    try:
        await first_line_with(process, "projector and stuck detector running")
        async with connect(settings=Settings(database_url=database_url), listeners=False,
                           consistency_timeout=10) as writer:
            job = await writer.create_job(user_id="alice", **UPLOAD)
            deadline = time.monotonic() + 10
            while (await writer.list_jobs()).total == 0:  # only `vjm listen` projects here
                assert time.monotonic() < deadline, "vjm listen did not project the new job"
                await asyncio.sleep(0.1)  # poll
            assert (await writer.get_job_by_id(job.job_id)).status == "queued"
    finally:
        code, out, err = await finish(process, terminate=True)
    assert code == 0 and "vjm listen: stopped" in out and "Traceback" not in err


async def test_watch_prints_changes_as_they_happen(manager_with_listeners: VideoJobManager, database_url: str) -> None:
    process = spawn("watch", "--user", "alice", "--max-changes", "2", "--database-url", database_url)
    try:
        await first_line_with(process, "vjm watch: watching job changes")
        await manager_with_listeners.create_job(user_id="bob", **UPLOAD)  # filtered out
        job = await manager_with_listeners.create_job(user_id="alice", **UPLOAD)
        created = await first_line_with(process, "change", within=10)
        await manager_with_listeners.start_processing(job.job_id, "w1")
        started = await first_line_with(process, "change", within=10)
    finally:
        code, rest, err = await finish(process, terminate=False)
    assert code == 0, err
    assert str(job.job_id)[-8:] in created and "alice" in created and "queued" in created
    assert str(job.job_id)[-8:] in started and "processing" in started and "change" not in rest


async def test_up_serves_the_api_and_dashboard_and_stops_cleanly(database_url: str) -> None:
    process = spawn("up", "--port", "0", "--database-url", database_url)
    try:
        line = await first_line_with(process, "vjm up: serving")
        base = line.split("serving ")[1].split("/ ")[0]
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            health = await client.get("/healthz")
            page = await client.get("/")
            unauthorized = await client.get("/api/v1/user/jobs")
        assert health.status_code == 200 and health.json()["database"]["status"] == "ok"
        assert page.status_code == 200 and "vjm dashboard" in page.text
        assert unauthorized.status_code == 401
    finally:
        code, out, err = await finish(process, terminate=True)
    assert code == 0 and "vjm up: stopped" in out and "Traceback" not in err


async def _up_once(database_url: str, secret_file: Path) -> tuple[str, str, str]:
    """Start `vjm up --secret-file`, read its announcement, and return (base URL, service token, user command)."""
    process = spawn("up", "--port", "0", "--secret-file", str(secret_file), "--database-url", database_url)
    try:
        base = (await first_line_with(process, "vjm up: serving")).split("serving ")[1].split("/ ")[0]
        where = await first_line_with(process, "identity secret is in")
        service = (await first_line_with(process, "service token")).split(": ", 1)[1].strip()
        command = (await first_line_with(process, "user tokens")).split(": ", 1)[1].strip()
        user = (await asyncio.to_thread(subprocess.run, ["sh", "-c", command], capture_output=True, text=True,
                                        timeout=60, env=clean_env())).stdout.strip()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            as_user = await client.get("/api/v1/user/jobs", headers={"Authorization": f"Bearer {user}"})
            as_service = await client.get("/api/v1/teams", headers={"Authorization": f"Bearer {service}"})
        assert as_user.status_code == 200 and as_service.status_code == 200, (as_user.text, as_service.text)
    finally:
        code, out, err = await finish(process, terminate=True)
    assert code == 0 and "Traceback" not in err, err
    return where, service, user


async def test_up_keeps_its_secret_in_a_file_and_prints_a_token_command_that_works(database_url: str,
                                                                                   tmp_path: Path) -> None:
    secret_file = tmp_path / "vjm" / "secret"
    first, service, user = await _up_once(database_url, secret_file)
    assert "made now, mode 0600" in first and secret_file.stat().st_mode & 0o777 == 0o600
    second, _, _ = await _up_once(database_url, secret_file)
    assert "kept across restarts" in second
    # The first run's tokens still work after a restart: the secret was kept.
    process = spawn("up", "--port", "0", "--secret-file", str(secret_file), "--database-url", database_url)
    try:
        base = (await first_line_with(process, "vjm up: serving")).split("serving ")[1].split("/ ")[0]
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            r = await client.get("/api/v1/user/jobs", headers={"Authorization": f"Bearer {user}"})
        assert r.status_code == 200, r.text
    finally:
        await finish(process, terminate=True)


async def test_up_without_a_secret_says_its_tokens_die_with_it(database_url: str) -> None:
    process = spawn("up", "--port", "0", "--database-url", database_url)
    try:
        warning = await first_line_with(process, "VJM_JWT_SECRET is not set")
    finally:
        await finish(process, terminate=True)
    assert "dies with this process" in warning and "--secret-file" in warning


async def test_teams_from_the_cli_and_a_team_id_to_list_jobs_with(database_url: str) -> None:
    made = await avjm("teams", "create", "studio", "--as", "alice", "--database-url", database_url)
    assert made.returncode == 0, made.stderr
    team_id = made.stdout.strip()  # TEAM_ID=$(vjm teams create studio --as alice)
    added = await avjm("teams", "add", team_id, "bob", "--as", "alice", "--database-url", database_url)
    assert added.returncode == 0, added.stderr
    members = json.loads((await avjm("teams", "members", team_id, "--as", "bob", "--json",
                                     "--database-url", database_url)).stdout)
    assert {(m["user_id"], m["role"]) for m in members} == {("alice", "owner"), ("bob", "member")}
    refused = await avjm("teams", "add", team_id, "carol", "--as", "bob", "--database-url", database_url)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    listed = json.loads((await avjm("jobs", "list", "--team", team_id, "--as", "alice", "--json",
                                    "--database-url", database_url)).stdout)
    assert listed["total"] == 0 and listed["items"] == []
    removed = await avjm("teams", "remove", team_id, "bob", "--as", "bob", "--database-url", database_url)
    assert removed.returncode == 0, removed.stderr
    assert (await avjm("teams", "delete", team_id, "--as", "alice", "--database-url", database_url)).returncode == 0
    assert json.loads((await avjm("teams", "list", "--as", "alice", "--json", "--database-url", database_url)
                       ).stdout) == []


async def test_listed_ids_are_what_show_takes_and_piped_tables_cut_nothing(manager_with_listeners: VideoJobManager,
                                                                          database_url: str) -> None:
    long_name = "a-very-long-holiday-upload-name-that-would-not-fit-a-narrow-column-" + "x" * 60 + ".mp4"
    job = await manager_with_listeners.create_job(user_id="alice", **{**UPLOAD, "original_filename": long_name})
    listed = await avjm("jobs", "list", "--database-url", database_url)
    assert listed.returncode == 0, listed.stderr
    assert long_name in listed.stdout and "…" not in listed.stdout  # whole values, piped
    [printed] = [word for line in listed.stdout.splitlines() for word in line.split() if word == str(job.job_id)]
    shown = await avjm("jobs", "show", printed, "--json", "--database-url", database_url)
    assert shown.returncode == 0 and json.loads(shown.stdout)["original_filename"] == long_name


JOB = "01a24949-41f3-7995-8e2c-6c6597199768"
EVERY_DATABASE_COMMAND = [
    ["jobs", "list"], ["jobs", "show", JOB], ["jobs", "history", JOB], ["jobs", "cancel", JOB], ["jobs", "retry", JOB],
    ["jobs", "delete", JOB], ["stats"], ["projections", "verify"], ["projections", "rebuild"],
    ["projections", "status"], ["projections", "void", "--position", "1", "--reason", "r"], ["maintenance", "reset-stuck"],
    ["audit", "verify"], ["audit", "seal"], ["audit", "prove", JOB], ["migrate"], ["listen"], ["watch"],
    ["up", "--port", "0"], ["status"],
]


@pytest.mark.parametrize("command", EVERY_DATABASE_COMMAND, ids=" ".join)
async def test_a_login_without_rights_gets_one_line_and_exit_1(database_url: str, command: list[str]) -> None:
    """The application's login may not migrate: every command says so in one line, never a traceback."""
    from store import with_user

    app_url = with_user(database_url, "vjm_app")
    result = await avjm(*command, "--database-url", app_url)
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(lines) == 1 and "vjm_app may not migrate" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
