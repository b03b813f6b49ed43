"""What differs between the end user's document and the service's: the names a service must give.

An end user acts as the token's `sub`: the owner of a job or team they create, and the
subject of their own lists, so `user_id` and `owner_id` are optional for them (their own, or
a 403). A service acts for someone it must name: the routes refuse (422) a service request
without these names (routes/jobs.py `_owner`, routes/user.py `_subject`, routes/teams.py
`create_team`). The service's document states them as required and not null; the end
user's states them as the routes declare them.
"""

from __future__ import annotations

from typing import Any

from .openapi_30 import without_null

END_USER, SERVICE = "end_user", "service"
CALLERS = (END_USER, SERVICE)

# Body fields a service must give: component schema -> property.
SERVICE_BODY_FIELDS = {"CreateJobRequest": "user_id", "CreateTeamRequest": "owner_id"}
# Query parameters a service must give: (path, method) -> parameter.
SERVICE_QUERY = {("/api/v1/user/jobs", "get"): "user_id", ("/api/v1/user/jobs/stats", "get"): "user_id"}

_INFO = {
    END_USER: "This document describes the API as an end user (`role: authenticated`) calls it; fetched with a "
              "`service_role` token, `/openapi.json` describes it as a service calls it.",
    SERVICE: "This document describes the API as a service (`role: service_role`) calls it: a service names "
             "the user it acts for where an end user is the token's `sub`.",
}


def for_caller(document: dict[str, Any], caller: str) -> None:
    """Adapt the 3.1 document (in place) to one kind of caller."""
    if caller not in CALLERS:
        raise ValueError(f"unknown caller {caller!r}; one of {CALLERS}")
    document["info"]["description"] = f"{document['info'].get('description', '')}\n\n{_INFO[caller]}"
    document["info"]["x-vjm-caller"] = caller
    if caller == SERVICE:
        _require_service_names(document)


def _require_service_names(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for component, name in SERVICE_BODY_FIELDS.items():
        schema = schemas[component]
        schema["properties"][name] = without_null(schema["properties"][name])
        schema["required"] = [*schema.get("required", []), name]
    for (path, method), name in SERVICE_QUERY.items():
        for parameter in document["paths"][path][method]["parameters"]:
            if parameter["name"] == name and parameter["in"] == "query":
                parameter["required"] = True
                parameter["schema"] = without_null(parameter["schema"])
