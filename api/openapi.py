"""The OpenAPI 3.1 document, generated from the app's routes and the pydantic models they validate with."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.endpoint import JSON_TYPES, Operation, operation_of
from api.problems import PROBLEM_TYPE
from api.schemas import Problem

_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_REF = "#/components/schemas/{model}"
KEY_SCHEME = "ApiKey"


def _version() -> str:
    try:
        return metadata.version("art-critic")
    except metadata.PackageNotFoundError:
        return "0"


def _parameter_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A property schema as a query parameter's: no title, no null alternative (absent means null)."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "description")}
    options = schema.pop("anyOf", None)
    if options is not None:
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) == 1:
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _query_parameters(definition: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(definition.get("required", ()))
    parameters = []
    for name, schema in definition["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in required, "schema": _parameter_schema(schema)}
        if schema.get("description"):
            parameter["description"] = schema["description"]
        if parameter["schema"].get("type") == "array":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _problem_codes(operation: Operation, has_path_arguments: bool, reads_need_key: bool) -> list[int]:
    codes = set(operation.errors)
    if operation.query or operation.body:
        codes.add(400)
    if operation.write or (reads_need_key and not operation.public):
        codes.add(401)
    if operation.write:
        codes.update((403, 507))
    if has_path_arguments:
        codes.add(404)
    if operation.body:
        codes.update((413, 415))
    if not operation.public:
        codes.update((429, 503))
    return sorted(codes)


def openapi_document(app: Flask) -> dict[str, Any]:
    """The document for ``app`` as configured (whether reads need a key shows in the security sections)."""
    routes = []
    for rule in app.url_map.iter_rules():
        operation = operation_of(app.view_functions.get(rule.endpoint))
        if operation is not None and operation.documented:
            routes.append((rule, operation))
    wanted: set[tuple[type[BaseModel], str]] = {(Problem, "serialization")}
    for _, operation in routes:
        for model, mode in ((operation.query, "validation"), (operation.body, "validation")):
            if model is not None:
                wanted.add((model, mode))
        if operation.response is not None:
            wanted.add((operation.response, "serialization"))
    refs, definitions = models_json_schema(sorted(wanted, key=lambda m: m[0].__name__), ref_template=_REF)
    schemas = definitions.get("$defs", {})

    def name_of(model: type[BaseModel], mode: str) -> str:
        return refs[(model, mode)]["$ref"].rsplit("/", 1)[-1]

    reads_need_key = app.config["READS_NEED_KEY"]
    problem = {"content": {PROBLEM_TYPE: {"schema": refs[(Problem, "serialization")]}}}
    paths: dict[str, dict[str, Any]] = {}
    for rule, operation in sorted(routes, key=lambda route: route[0].rule):
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in sorted(rule.arguments)
        ]
        if operation.query is not None:
            parameters += _query_parameters(schemas[name_of(operation.query, "validation")])
        success: dict[str, Any] = {"description": operation.summary}
        if operation.response is not None:
            success["content"] = {"application/json": {"schema": refs[(operation.response, "serialization")]}}
        responses: dict[str, Any] = {str(code): success for code in (operation.status, *operation.also)}
        if operation.cached:
            responses["304"] = {"description": "Not modified: If-None-Match matched the ETag."}
        for code in _problem_codes(operation, bool(rule.arguments), reads_need_key):
            responses[str(code)] = {"description": _DESCRIPTIONS.get(code, "Error."), **problem}
        responses["default"] = {"description": "Any other error.", **problem}
        entry: dict[str, Any] = {
            "operationId": rule.endpoint.replace(".", "_"),
            "summary": operation.summary,
            "tags": [operation.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if operation.description:
            entry["description"] = operation.description
        if operation.body is not None:
            body_schema = refs[(operation.body, "validation")]
            entry["requestBody"] = {"required": True, "content": {kind: {"schema": body_schema} for kind in JSON_TYPES}}
        if operation.write or (reads_need_key and not operation.public):
            entry["security"] = [{KEY_SCHEME: []}]
        paths.setdefault(path, {})[operation.method.lower()] = entry
    for model in {operation.query for _, operation in routes if operation.query is not None}:
        schemas.pop(name_of(model, "validation"), None)  # inlined as parameters
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Art critic API",
            "version": _version(),
            "description": "Style-similar artworks and drafted critiques over a museum collection. Errors are "
            "application/problem+json. Writes need an API key in X-API-Key (critic keys create NAME).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


_DESCRIPTIONS = {
    400: "Invalid request: bad JSON, a wrong type, an unknown field, a bad filter or query.",
    401: "No valid API key.",
    403: "This browser origin may not write, or the key may only read.",
    404: "Unknown artwork id.",
    409: "The artwork exists already (POST), or kept changing while a PATCH was applied.",
    412: "The artwork changed since the ETag in If-Match.",
    413: "The body is larger than the configured limit.",
    415: "The body is not JSON.",
    429: "Rate limit reached; see Retry-After.",
    503: "The model and index are still loading, or every generation slot is busy; see Retry-After.",
    507: "The server's disk is full: nothing of the change was stored; retry once there is room.",
}
