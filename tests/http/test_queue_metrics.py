"""Issue "scheduling": /metrics shows the run queue by platform and priority (claimable or held back by a
run_at still ahead) and how long the oldest claimable job of each platform has waited."""

from __future__ import annotations

import re

from tests.support.http_app import JOB
from tests.support.tokens import bearer


def _gauges(text: str, name: str) -> dict[str, float]:
    """Every sample of one metric, by its label text."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, re.M)}


async def test_metrics_show_the_queue_by_platform_and_priority(client) -> None:
    for fields in ({}, {}, {"priority": 9}, {"platform_target": "instagram"},
                   {"run_at": "2099-01-01T00:00:00Z"}):
        response = await client.post("/api/v1/process", json={**JOB, **fields}, headers=bearer("alice"))
        assert response.status_code == 201, response.text
    text = (await client.get("/metrics")).text
    jobs = _gauges(text, "vjm_queue_jobs")
    platform = JOB["platform_target"]
    assert jobs[f'claimable="true",platform="{platform}",priority="0"'] == 2
    assert jobs[f'claimable="false",platform="{platform}",priority="0"'] == 1  # the run_at still ahead
    assert jobs[f'claimable="true",platform="{platform}",priority="9"'] == 1
    assert jobs['claimable="true",platform="instagram",priority="0"'] == 1
    oldest = _gauges(text, "vjm_queue_oldest_claimable_seconds")
    assert set(oldest) == {f'platform="{platform}"', 'platform="instagram"'} and all(v >= 0 for v in oldest.values())
