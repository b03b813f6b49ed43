"""GET /api/v1/stats/claim-latency: how long jobs waited to be claimed, per platform, as each caller may see.

Expected values are computed in Python from the stored events (tests.support.claim_waits).
"""

from __future__ import annotations

import pytest

from tests.http.test_openapi_document import document, validator
from tests.support.claim_waits import ALL_EVENTS, as_table, assert_same_latency, latency, waits
from tests.support.http_app import JOB
from tests.support.tokens import SERVICE, bearer

PATH = "/api/v1/stats/claim-latency"


async def claimed_jobs(manager, client) -> str:
    """erin: a tiktok job, and an instagram job in her team (gina is in it too); frank: a youtube_shorts job;
    all claimed. The team's id."""
    team = str((await manager.teams.create("studio", owner_id="erin")).team_id)
    await manager.teams.add_member(team, "gina")
    for sub, platform, extra in (("erin", "tiktok", {}), ("erin", "instagram", {"team_id": team}),
                                 ("frank", "youtube_shorts", {})):
        made = await client.post("/api/v1/process", json={**JOB, "platform_target": platform, **extra},
                                 headers=bearer(sub))
        assert made.status_code == 201, made.text
    while await manager.claim_jobs("w", limit=2):
        pass
    return team


async def test_each_caller_gets_the_waits_of_the_jobs_they_may_see(manager, client, pool) -> None:
    team = await claimed_jobs(manager, client)
    events = await pool.fetch(ALL_EVENTS)
    cases = (  # caller, query, the jobs counted: their owner or team
        (bearer("erin"), {}, lambda e: e["user_id"] == "erin"),
        (bearer("frank"), {"hours": 1}, lambda e: e["user_id"] == "frank"),
        (bearer("gina"), {}, lambda e: str(e["team_id"]) == team),
        (SERVICE, {}, lambda e: True),
        (SERVICE, {"team_id": team}, lambda e: str(e["team_id"]) == team),
        (bearer("frank"), {"team_id": team}, lambda e: False),  # not his team: nothing
    )
    for headers, params, keep in cases:
        response = await client.get(PATH, params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert_same_latency(as_table(response.json()), latency(waits(events, keep=keep)))
    assert (await client.get(PATH, params={"team_id": team}, headers=bearer("frank"))).json() == []


@pytest.mark.parametrize("hours", ["0", "721", "soon", "1.5"])
async def test_a_bad_window_is_422_naming_the_hours_parameter(client, hours: str) -> None:
    response = await client.get(PATH, params={"hours": hours}, headers=bearer("erin"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["query.hours"]


async def test_the_document_states_the_answer(manager, client) -> None:
    await claimed_jobs(manager, client)
    doc = await document(client, bearer("erin"))
    operation = doc["paths"][PATH]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert (schema["type"], schema["items"]) == ("array", {"$ref": "#/components/schemas/ClaimLatency"})
    assert {p["name"] for p in operation["parameters"]} == {"hours", "team_id"}
    answer = (await client.get(PATH, headers=SERVICE)).json()
    assert len(answer) == 3
    check = validator(schema, doc["components"]["schemas"])
    assert [e.message for e in check.iter_errors(answer)] == []
    assert set(doc["components"]["schemas"]["ClaimLatency"]["required"]) == set(answer[0])
