"""`vjm queue` (issue 19) run as an operator would: the real console script, real Postgres.

Pause, show, history, resume round trip with --json parsed; the changes name the operator
(VJM_SERVICE_NAME); the text output says the same; bad input exits 2 with a one-line reason.
"""

from __future__ import annotations

import json

from tests.support.cli import avjm, clean_env, vjm
from videojobs import VideoJobManager

OPERATOR = clean_env(VJM_SERVICE_NAME="ops-cli")


async def queue(database_url: str, *args: str) -> dict | list:
    """`vjm queue ARGS --json` as the operator; its parsed output (exit 0 asserted)."""
    done = await avjm("queue", *args, "--database-url", database_url, "--json", env=OPERATOR)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_pause_show_history_resume_round_trip(manager: VideoJobManager, database_url: str) -> None:
    job = await manager.create_job(user_id="alice", original_filename="a.mp4", original_filesize=1000, clip_count=1,
                                   quality_preset="pro", enhancement_level="basic", platform_target="tiktok")
    paused = await queue(database_url, "pause", "--platform", "tiktok", "--reason", "encoder upgrade")
    assert (paused["setting"], paused["scope"], paused["actor"], paused["reason"]) == (
        "pause", "tiktok", "ops-cli", "encoder upgrade")
    assert await manager.claim_jobs("w1", platform_target="tiktok") == []
    shown = await queue(database_url, "show")
    assert shown["fair_share"] == "user" and shown["caps"] == []
    assert [(p["platform"], p["actor"], p["reason"]) for p in shown["pauses"]] == [
        ("tiktok", "ops-cli", "encoder upgrade")]
    capped = await queue(database_url, "cap", "user", "*", "2", "--reason", "fair use")
    assert (capped["scope"], capped["value"]) == ("user:*", {"max_processing": 2})
    resumed = await queue(database_url, "resume", "--platform", "tiktok")
    assert (resumed["setting"], resumed["scope"], resumed["reason"]) == ("resume", "tiktok", None)
    assert [a.job_id for a in await manager.claim_jobs("w1", platform_target="tiktok")] == [job.job_id]
    history = await queue(database_url, "history")
    assert [(c["seq"], c["setting"], c["actor"]) for c in history] == [
        (resumed["seq"], "resume", "ops-cli"), (capped["seq"], "cap", "ops-cli"), (paused["seq"], "pause", "ops-cli")]
    newest = await queue(database_url, "history", "--limit", "1")
    assert [c["seq"] for c in newest] == [resumed["seq"]]
    text = await avjm("queue", "show", "--database-url", database_url, env=OPERATOR)
    assert text.returncode == 0 and "paused: nothing" in text.stdout and "cap: user * at most 2" in text.stdout


async def test_fair_share_and_removing_a_cap(manager: VideoJobManager, database_url: str) -> None:
    shared = await queue(database_url, "fair-share", "team")
    assert (shared["setting"], shared["value"]) == ("fair_share", {"fair_share": "team"})
    await queue(database_url, "cap", "platform", "instagram", "3")
    removed = await queue(database_url, "cap", "platform", "instagram", "none")
    assert removed["value"] == {"max_processing": None}
    policy = await manager.queue.policy()
    assert (policy.fair_share, policy.caps) == ("team", [])


async def test_bad_input_exits_2_with_a_clear_message(manager: VideoJobManager, database_url: str) -> None:
    for args, says in ((("cap", "galaxy", "*", "1"), "invalid choice: 'galaxy'"),
                       (("cap", "user", "bob", "many"), "'many' is not a number of jobs"),
                       (("cap", "team", "studio", "1"), "a team cap names a team id"),
                       (("fair-share", "project"), "invalid choice: 'project'"),
                       (("history", "--limit", "0"), "limit must be an integer from 1 to 1000")):
        done = await avjm("queue", *args, "--database-url", database_url, env=OPERATOR)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    assert await manager.queue.history() == []


def test_every_queue_action_has_help() -> None:
    for action in ("show", "pause", "resume", "cap", "fair-share", "history"):
        result = vjm("queue", action, "--help")
        assert result.returncode == 0 and result.stdout.startswith(f"usage: vjm queue {action}"), result.stderr
