"""The document FastAPI writes (OpenAPI 3.1) rewritten as OpenAPI 3.0.3, which the API serves.

Why 3.0: its Schema Object follows JSON Schema draft 4/5, where `integer` is "a JSON number
without a fraction or exponent part". That is the server's rule: integers are strict (`2`,
never `2.0`), in the HTTP models as in statemachine.payload_rules and the database's
vjm.payload_ok, and tests hold the API to refusing `2.0`. In 3.1 (JSON Schema 2020-12) `2.0`
is an integer, so a 3.1 document would promise what the server refuses; no 2020-12 keyword
can tell `2.0` from `2` (they are one value there).

The rewrite covers the 3.1 constructs the document uses and refuses any other (a new one is
converted on purpose, never served as invalid 3.0):
- `anyOf: [S, {"type": "null"}]` becomes S with `nullable: true` (a `$ref` S inside `allOf`,
  since 3.0 ignores a `$ref`'s siblings; an `enum` S lists null too, or it would refuse it);
- `const: v` becomes `enum: [v]`;
- a schema's `examples: [...]` becomes `example` (the first);
- a `$ref` with siblings becomes `allOf: [{"$ref": ...}]` with them;
- a `pattern`'s `\\UXXXXXXXX` escapes (Python's and PostgreSQL's spelling of a code point past
  U+FFFF, statemachine.payload_rules) become the characters themselves: ECMA 262, the dialect
  of OpenAPI patterns, has no such escape (JavaScript reads `\\U0001d173` as the letter U and
  digits, and would refuse `bob`). A literal character means that code point to a validator
  that reads patterns by code point (JSON Schema asks for the `u` flag), as the server does.
  Such a pattern sits in an `allOf` beside its string's lengths (the same constraint): a
  fuzzer that folds lengths into a pattern's quantifier (schemathesis 4) writes these
  characters back as `\\U` escapes, which its own ECMA validator then refuses.
"""

from __future__ import annotations

import re
from typing import Any

OPENAPI_VERSION = "3.0.3"
NULL = {"type": "null"}
# `\\U` and eight hex digits, not itself escaped (an even number of backslashes before it).
_ASTRAL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\U([0-9a-fA-F]{8})")
# Schema keywords of 3.1 with no 3.0 spelling: refused rather than passed through.
UNCONVERTED = ("prefixItems", "$defs", "contentMediaType", "contentSchema", "unevaluatedProperties",
               "dependentRequired", "dependentSchemas", "if", "then", "else", "$dynamicRef")


def to_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """The same document as OpenAPI 3.0.3 (a new dict; `document` is left as it was)."""
    converted = {**document, "openapi": OPENAPI_VERSION}
    converted.pop("jsonSchemaDialect", None)
    converted["paths"] = {path: {method: _operation(op) for method, op in item.items()}
                          for path, item in document.get("paths", {}).items()}
    components = dict(document.get("components", {}))
    components["schemas"] = {name: schema_30(s) for name, s in components.get("schemas", {}).items()}
    converted["components"] = components
    return converted


def schema_30(schema: Any) -> Any:
    """One JSON Schema (2020-12, as pydantic writes it) as an OpenAPI 3.0 Schema Object."""
    if not isinstance(schema, dict):
        return schema
    refused = [k for k in UNCONVERTED if k in schema]
    if refused or isinstance(schema.get("type"), list):
        raise ValueError(f"no OpenAPI 3.0 spelling for {refused or schema['type']!r} in {schema!r}")
    out = {key: _children(key, value) for key, value in schema.items()}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if isinstance(out.get("pattern"), str):
        out = _with_ecma_pattern(out)
    out = _nullable(out)
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def ecma_pattern(pattern: str) -> str:
    """The pattern with each `\\UXXXXXXXX` escape written as its character (ECMA 262 has no `\\U`)."""
    return _ASTRAL_ESCAPE.sub(lambda m: m.group(1) + chr(int(m.group(2), 16)), pattern)


def _with_ecma_pattern(schema: dict[str, Any]) -> dict[str, Any]:
    pattern = ecma_pattern(schema.pop("pattern"))
    if max(map(ord, pattern), default=0) > 0xFFFF and ("minLength" in schema or "maxLength" in schema):
        return {**schema, "allOf": [*schema.get("allOf", []), {"pattern": pattern}]}
    return {**schema, "pattern": pattern}


def _children(key: str, value: Any) -> Any:
    """Sub-schemas of a keyword converted; plain values (enum, required, example data) kept."""
    if key in ("properties", "patternProperties"):
        return {name: schema_30(s) for name, s in value.items()}
    if key in ("items", "additionalProperties", "not"):
        return schema_30(value)
    if key in ("anyOf", "oneOf", "allOf"):
        return [schema_30(s) for s in value]
    return value


def _optional(schema: dict[str, Any]) -> tuple[list[Any], dict[str, Any]] | None:
    """(the other branches, the outer keywords) of pydantic's optional `anyOf: [..., {type: null}]`, else None."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or NULL not in branches:
        return None
    return [b for b in branches if b != NULL], {k: v for k, v in schema.items() if k != "anyOf"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [S, null]` as S with `nullable: true` (more branches: `anyOf` of the rest, nullable)."""
    optional = _optional(schema)
    if optional is None:
        return schema
    rest, outer = optional
    if len(rest) == 1 and "$ref" not in rest[0]:
        single = {**rest[0], **outer, "nullable": True}
        if "enum" in single:  # 3.0.3: an enum without null would still refuse it
            single["enum"] = [*single["enum"], None]
        return single
    inner = {"allOf": rest} if len(rest) == 1 else {"anyOf": rest}
    return {**inner, **outer, "nullable": True}


def _operation(operation: Any) -> Any:
    if not isinstance(operation, dict):
        return operation
    converted = dict(operation)
    if "parameters" in operation:
        # A parameter is given or absent, never null: a header or query string has no null, and a
        # nullable one invites clients to send the text "null".
        converted["parameters"] = [{**p, "schema": schema_30(without_null(p["schema"]))} if "schema" in p else p
                                   for p in operation["parameters"]]
    if "requestBody" in operation:
        converted["requestBody"] = _with_content(operation["requestBody"])
    converted["responses"] = {code: _with_content(r) for code, r in operation.get("responses", {}).items()}
    return converted


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's optional `anyOf: [S, {type: null}]` (3.1) as S, keeping the outer keywords but a null default."""
    optional = _optional(schema)
    if optional is None:
        return schema
    rest, outer = optional
    if outer.get("default", 0) is None:
        del outer["default"]
    return {**rest[0], **outer} if len(rest) == 1 else {**outer, "anyOf": rest}


def _with_content(holder: dict[str, Any]) -> dict[str, Any]:
    """A request body or response with each media type's schema converted."""
    if "content" not in holder:
        return holder
    content = {media: {**obj, "schema": schema_30(obj["schema"])} if "schema" in obj else obj
               for media, obj in holder["content"].items()}
    return {**holder, "content": content}
