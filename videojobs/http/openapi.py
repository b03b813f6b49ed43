"""The OpenAPI documents the API serves: one per kind of caller, OpenAPI 3.0.3, at `/openapi.json`.

`GET /openapi.json` answers the document of the caller whose token came with it (the
end user's without a token; 401 for a token that does not verify), as PostgREST tailors
its document to the caller's role: an end user and a service must send different things
(openapi_callers.py). `/docs` and `/redoc` render the end user's.

Each document is FastAPI's, post-processed once per caller: problem responses as
application/problem+json, our 422 instead of FastAPI's, the 400 of an unparsable body and
the 413 of a body over the limit wherever a body is taken, PATCH's exact union, each event of
the stream, then rewritten as OpenAPI 3.0.3 (openapi_30.py says why).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter
from starlette.responses import HTMLResponse, JSONResponse, Response

from .auth import AuthenticationFailed, bearer_token, decode_token
from .dependencies import BEARER, TOKEN_CHECKS, bearer_scheme
from .openapi_30 import to_openapi_30
from .openapi_callers import END_USER, SERVICE, for_caller
from .patch_body import PATCH_JOB_BODY
from .problems import PROBLEM_MEDIA_TYPE, problem_for
from .schemas import JobChangeMessage

VALIDATION_REF = "#/components/schemas/ValidationProblem"
PROBLEM_REF = "#/components/schemas/Problem"
OPENAPI_URL = "/openapi.json"
STREAM_PATH = "/api/v1/events/stream"


def install_openapi(app: FastAPI, max_body_bytes: int) -> None:
    """Make `app.openapi(caller)` build (once) and return that caller's document, and serve the documents."""
    documents: dict[str, dict[str, Any]] = {}

    def document(caller: str = END_USER) -> dict[str, Any]:
        if caller not in documents:
            documents[caller] = build_document(app, caller, max_body_bytes)
        return documents[caller]

    app.openapi = document  # type: ignore[method-assign]
    _serve(app, document)


def build_document(app: FastAPI, caller: str, max_body_bytes: int) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the app as `caller` (END_USER or SERVICE) calls it."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes, tags=app.openapi_tags)
    _document_bearer_security(schema, app)
    _document_unparsable_bodies(schema)
    _document_body_limit(schema, max_body_bytes)
    _exact_patch_body(schema)
    _event_stream_events(schema)
    _problem_media_types(schema)
    _drop_fastapi_validation(schema)
    for_caller(schema, caller)
    return to_openapi_30(schema)


def _serve(app: FastAPI, document: Any) -> None:
    async def openapi_json(request: Request) -> Response:
        authorization = request.headers.get("authorization")
        if authorization is None:
            return JSONResponse(document(END_USER), headers={"Vary": "Authorization"})
        settings = request.app.state.vjm.settings
        try:
            who = decode_token(bearer_token(authorization), secret=settings.jwt_secret or "",
                               audience=settings.jwt_audience)
        except AuthenticationFailed as exc:
            return problem_for(exc, request.url.path)
        return JSONResponse(document(SERVICE if who.is_service else END_USER), headers={"Vary": "Authorization"})

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} - docs")

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{app.title} - ReDoc")

    app.add_route(OPENAPI_URL, openapi_json, include_in_schema=False)
    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


def _problem_media_types(schema: dict[str, Any]) -> None:
    """Every 4xx/5xx response is sent as application/problem+json: say so."""
    for operation in _operations(schema):
        for code, response in operation.get("responses", {}).items():
            content = response.get("content", {})
            if code[:1] in "45" and "application/json" in content:
                content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
            if code == "422":
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": VALIDATION_REF}}}
                response["description"] = "Invalid input; `errors` names each field"


def _exact_patch_body(schema: dict[str, Any]) -> None:
    """PATCH /jobs/{job_id}: the body as a union of the moves and the metadata change (patch_body.PATCH_JOB_BODY)."""
    operation = schema.get("paths", {}).get("/api/v1/jobs/{job_id}", {}).get("patch")
    if operation is None:
        return
    union = TypeAdapter(PATCH_JOB_BODY).json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in union.pop("$defs", {}).items():
        components.setdefault(name, definition)  # the enums are there already, the same
    components.pop("PatchJobRequest", None)  # the parser's model; the document states the union
    operation["requestBody"]["content"]["application/json"]["schema"] = union


def _event_stream_events(schema: dict[str, Any]) -> None:
    """The stream's schema is one event (as OpenAPI before 3.2 reads a text/event-stream schema):
    `event` job_change, `id` its seq, `data` a JobChangeMessage as JSON (heartbeats are comments)."""
    operation = schema.get("paths", {}).get(STREAM_PATH, {}).get("get")
    if operation is None:
        return
    message = JobChangeMessage.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.setdefault("components", {}).setdefault("schemas", {})["JobChangeMessage"] = message
    media = operation["responses"]["200"]["content"]["text/event-stream"]
    media["schema"] = {
        "type": "object", "required": ["event", "id", "data"],
        "description": "One server-sent event; `: ping` heartbeats and the overflow notice are comment lines",
        "properties": {
            "event": {"type": "string", "enum": ["job_change"]},
            "id": {"type": "string", "pattern": "^[0-9]+$",
                   "description": "The change's seq: send it back as Last-Event-ID to resume after it"},
            "data": {"type": "string", "description": "A JobChangeMessage as JSON",
                     "x-content-media-type": "application/json",
                     "x-content-schema": {"$ref": "#/components/schemas/JobChangeMessage"}}}}


def _document_unparsable_bodies(schema: dict[str, Any]) -> None:
    """A request body that is not JSON at all answers 400 (FastAPI's parser): every operation with a body says so."""
    for operation in _operations(schema):
        if "requestBody" in operation:
            operation.setdefault("responses", {}).setdefault("400", {
                "description": "The body is not JSON",
                "content": {"application/json": {"schema": {"$ref": PROBLEM_REF}}}})


def _document_body_limit(schema: dict[str, Any], max_body_bytes: int) -> None:
    """A body over the limit answers 413 before anything reads it (middleware.ApiEdge), whatever
    its schema admits: every operation with a body says so, with the limit."""
    for operation in _operations(schema):
        if "requestBody" in operation:
            operation.setdefault("responses", {})["413"] = {
                "description": f"The request body is over {max_body_bytes} bytes",
                "content": {"application/json": {"schema": {"$ref": PROBLEM_REF}}}}


def _document_bearer_security(schema: dict[str, Any], app: FastAPI) -> None:
    """The bearer scheme on every operation whose route verifies a token (depends on one of TOKEN_CHECKS, which
    read the header themselves rather than through FastAPI's security dependency: a nested resolution per request)."""
    secured = {(path, method.lower()) for path, methods, dependant in _api_routes(app)
               if any(_depends_on(dependant, check) for check in TOKEN_CHECKS) for method in methods}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if (path, method) in secured:
                operation["security"] = [{BEARER: []}]
    if secured:
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[BEARER] = bearer_scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _api_routes(app: FastAPI) -> list[tuple[str, set[str], Dependant]]:
    """Each API route's effective path, methods and dependencies, also in the routers FastAPI keeps nested."""
    contexts = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.160 includes routers lazily
    if contexts is None:
        return [(r.path_format, r.methods or set(), r.dependant) for r in app.routes if isinstance(r, routing.APIRoute)]
    return [(c.path_format, c.methods or set(), c.dependant) for c in contexts(app.routes)
            if isinstance(c.original_route, routing.APIRoute)]


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _drop_fastapi_validation(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [operation for path in schema.get("paths", {}).values() for operation in path.values()]
