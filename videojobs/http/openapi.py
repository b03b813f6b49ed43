"""The OpenAPI document: problem responses as application/problem+json, our 422 instead of FastAPI's."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from .problems import PROBLEM_MEDIA_TYPE
from .schemas import PATCH_JOB_BODY

VALIDATION_REF = "#/components/schemas/ValidationProblem"


def install_openapi(app: FastAPI) -> None:
    """Replace app.openapi with a builder that post-processes FastAPI's document once."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes, tags=app.openapi_tags)
            _document_unparsable_bodies(schema)
            _exact_patch_body(schema)
            _problem_media_types(schema)
            _drop_fastapi_validation(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _problem_media_types(schema: dict[str, Any]) -> None:
    """Every 4xx/5xx response is sent as application/problem+json: say so."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code[:1] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
                if code == "422":
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": VALIDATION_REF}}}
                    response["description"] = "Invalid input; `errors` names each field"


def _exact_patch_body(schema: dict[str, Any]) -> None:
    """PATCH /jobs/{job_id}: the body as a union of the moves and the metadata change (schemas.PATCH_JOB_BODY)."""
    operation = schema.get("paths", {}).get("/api/v1/jobs/{job_id}", {}).get("patch")
    if operation is None:
        return
    union = TypeAdapter(PATCH_JOB_BODY).json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in union.pop("$defs", {}).items():
        components.setdefault(name, definition)  # the enums are there already, the same
    components.pop("PatchJobRequest", None)  # the parser's model; the document states the union
    operation["requestBody"]["content"]["application/json"]["schema"] = union


def _document_unparsable_bodies(schema: dict[str, Any]) -> None:
    """A request body that is not JSON at all answers 400 (FastAPI's parser): every operation with a body says so."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("400", {
                    "description": "The body is not JSON",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})


def _drop_fastapi_validation(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
