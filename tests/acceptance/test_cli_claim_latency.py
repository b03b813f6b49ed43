"""`vjm stats --waits`: the claim latency per platform, as JSON or a table, scoped as `vjm stats` is."""

from __future__ import annotations

import json

from tests.support.claim_waits import ALL_EVENTS, as_table, assert_same_latency, latency, waits
from tests.support.cli import avjm
from tests.support.factories import create_data
from videojobs import VideoJobManager


async def test_stats_waits_prints_the_claim_latency(manager: VideoJobManager, database_url: str, pool) -> None:
    for user, platform in (("alice", "tiktok"), ("alice", "instagram"), ("bob", "tiktok")):
        await manager.create_job(user_id=user, **create_data(platform_target=platform))
    while await manager.claim_jobs("w", limit=2):
        pass
    events = await pool.fetch(ALL_EVENTS)
    everything = json.loads((await avjm("stats", "--waits", "--database-url", database_url, "--json")).stdout)
    assert_same_latency(as_table(everything), latency(waits(events)))
    bob = json.loads((await avjm("stats", "--waits", "--hours", "2", "--as", "bob", "--database-url", database_url,
                                 "--json")).stdout)
    assert_same_latency(as_table(bob), latency(waits(events, keep=lambda e: e["user_id"] == "bob")))
    table = await avjm("stats", "--waits", "--user", "alice", "--database-url", database_url)
    assert table.returncode == 0 and "claim latency, last 24 h" in table.stdout
    assert "instagram" in table.stdout and "p95" in table.stdout
    refused = await avjm("stats", "--waits", "--hours", "0", "--database-url", database_url)
    assert refused.returncode == 2 and "hours must be an integer from 1 to 720" in refused.stderr
    alone = await avjm("stats", "--hours", "5", "--database-url", database_url)
    assert alone.returncode == 2 and "--hours goes with --waits" in alone.stderr
