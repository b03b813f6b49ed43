"""The OpenAPI documents say what the server does (issue 17, item 6), checked without a fuzzer.

`GET /openapi.json` answers the caller's document (end user without a token or with an end
user's; service with a service token; 401 for a token that does not verify). Each is valid
OpenAPI 3.0.3 (formats checked: every pattern compiles as ECMA 262), and what the fuzz run
of test_schemathesis.py cannot see is checked here: the `data` of each streamed event is a
JobChangeMessage as the document's component states it.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import jsonschema_rs
from schemathesis.specs.openapi.converter import to_json_schema
from schemathesis.specs.openapi.definitions import OPENAPI_30

from tests.support.http_app import JOB
from tests.support.tokens import SERVICE, bearer

BODY_PROBLEMS = {"400", "413", "422"}


async def raw_events(base_url: str, headers: dict, count: int, within: float = 15.0) -> list[dict[str, str]]:
    """The first `count` events of the stream as sent: each field (`event`, `id`, `data`) as its text."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=within) as client, asyncio.timeout(within):
        async with client.stream("GET", f"{base_url}/api/v1/events/stream", headers=headers) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line == "" and current:
                    events.append(current)
                    current = {}
                    if len(events) == count:
                        break
                elif not line.startswith(":"):  # a comment line is a heartbeat
                    name, _, value = line.partition(":")
                    current[name] = value.removeprefix(" ")
    return events


async def document(client: httpx.AsyncClient, headers: dict | None = None) -> dict:
    response = await client.get("/openapi.json", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["vary"] == "Authorization"
    return response.json()


def validator(schema: dict, components: dict) -> jsonschema_rs.Validator:
    """A validator of one OpenAPI 3.0 schema as the document states it (`nullable` read as 3.0 reads it)."""
    bundled = {**to_json_schema(schema, nullable_keyword="nullable"),
               "components": {"schemas": {name: to_json_schema(s, nullable_keyword="nullable")
                                          for name, s in components.items()}}}
    return jsonschema_rs.Draft4Validator(bundled, validate_formats=True)


async def test_each_caller_gets_its_own_valid_openapi_303_document(client) -> None:
    anonymous, user, service = (await document(client), await document(client, bearer("alice")),
                                await document(client, SERVICE))
    assert anonymous == user and user != service
    assert (user["info"]["x-vjm-caller"], service["info"]["x-vjm-caller"]) == ("end_user", "service")
    meta = jsonschema_rs.validator_for(OPENAPI_30, validate_formats=True)
    for doc in (user, service):
        assert doc["openapi"] == "3.0.3"
        assert [e.message[:300] for e in meta.iter_errors(doc)] == []
        assert "\\U" not in json.dumps(doc), "a Python \\U escape is no ECMA 262 (JavaScript reads a letter U)"


async def test_the_documented_security_is_what_the_server_asks(client) -> None:
    """An operation that declares the bearer scheme answers 401 without a token; one that declares none answers."""
    for doc in (await document(client), await document(client, SERVICE)):
        scheme = doc["components"]["securitySchemes"]["bearerAuth"]
        assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
        for path, operations in doc["paths"].items():
            concrete = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
            for method, operation in operations.items():
                response = await client.request(method.upper(), concrete, timeout=5)
                secured = operation.get("security") == [{"bearerAuth": []}]
                assert secured is (response.status_code == 401), (method, path, response.status_code)
                assert operation.get("security") in (None, [{"bearerAuth": []}]), (method, path)


async def test_a_token_that_does_not_verify_gets_401_not_a_document(client) -> None:
    response = await client.get("/openapi.json", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"


async def test_the_service_document_requires_the_names_a_service_must_give(client) -> None:
    user, service = await document(client, bearer("alice")), await document(client, SERVICE)
    for doc, required in ((user, False), (service, True)):
        schemas = doc["components"]["schemas"]
        assert ("user_id" in schemas["CreateJobRequest"]["required"]) is required
        assert ("owner_id" in schemas["CreateTeamRequest"].get("required", [])) is required
        for path in ("/api/v1/user/jobs", "/api/v1/user/jobs/stats"):
            named = next(p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "user_id")
            assert named.get("required", False) is required
    # What the service document requires, the server requires of a service.
    missing = await client.post("/api/v1/process", json=JOB, headers=SERVICE)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "user_id"
    named = await client.post("/api/v1/process", json={**JOB, "user_id": "alice"}, headers=SERVICE)
    assert named.status_code == 201


async def test_integers_are_strict_as_openapi_30_states_them(client) -> None:
    doc = await document(client)
    clip_count = doc["components"]["schemas"]["CreateJobRequest"]["properties"]["clip_count"]
    assert clip_count["type"] == "integer"
    check = jsonschema_rs.Draft4Validator(clip_count)
    assert check.is_valid(2) and not check.is_valid(2.0)  # draft 4's integer: no fraction part, as the server
    refused = await client.post("/api/v1/process", json={**JOB, "clip_count": 2.0}, headers=bearer("alice"))
    assert refused.status_code == 422


async def test_every_operation_with_a_body_documents_400_413_and_422(client) -> None:
    doc = await document(client)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert BODY_PROBLEMS <= set(operation["responses"]), (method, path, sorted(operation["responses"]))
            for parameter in operation.get("parameters", []):
                assert not parameter["schema"].get("nullable"), (method, path, parameter["name"])


async def test_a_method_an_api_path_does_not_take_is_405_with_that_paths_allow(client) -> None:
    for method, path, allow in (("GET", "/api/v1/process", "POST"), ("OPTIONS", "/api/v1/process", "POST"),
                                ("GET", "/api/v1/processor/jobs/claim", "POST"),
                                ("PUT", "/api/v1/jobs/9b2f6c1e-3f7a-4d1e-9a57-0c4f2b1d8e11", "DELETE, GET, PATCH")):
        response = await client.request(method, path, headers=bearer("alice"))
        assert (response.status_code, response.headers.get("allow")) == (405, allow), (method, path)
    missing = await client.get("/api/v1/jobs/9b2f6c1e-3f7a-4d1e-9a57-0c4f2b1d8e11", headers=bearer("alice"))
    assert missing.status_code == 404  # the route took the method: its own 404 stays


async def test_streamed_events_and_their_data_match_the_document(client, live_server_with_listeners) -> None:
    doc = await document(client)
    components = doc["components"]["schemas"]
    event_schema = doc["paths"]["/api/v1/events/stream"]["get"]["responses"]["200"]["content"][
        "text/event-stream"]["schema"]
    data_schema = event_schema["properties"]["data"]["x-content-schema"]
    async with httpx.AsyncClient(base_url=live_server_with_listeners) as live:
        for _ in range(2):
            assert (await live.post("/api/v1/process", json=JOB, headers=bearer("alice"))).status_code == 201
    events = await raw_events(live_server_with_listeners, bearer("alice"), 2)
    event_check, data_check = validator(event_schema, components), validator(data_schema, components)
    assert len(events) == 2
    for event in events:
        assert [e.message for e in event_check.iter_errors(event)] == []
        assert [e.message for e in data_check.iter_errors(json.loads(event["data"]))] == []
