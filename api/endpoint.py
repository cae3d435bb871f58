"""Declaring endpoints once: the route, its schemas and its policy, used to validate, to guard and to document.

A ``Resource`` wraps a Flask blueprint. ``resource.get("/artworks/<id>", query=..., response=...)`` registers
a view that receives validated ``query``/``body`` models, and records an ``Operation`` on it that the
security layer (keys, CORS, rate limits), the caching and the OpenAPI generator read back.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel, ValidationError

from api.problems import ApiProblem, bad_request
from index.filters import is_substring

API_PREFIX = "/api/v1"
JSON_TYPES = ("application/json", "application/merge-patch+json")


@dataclass(frozen=True)
class Operation:
    """What the rest of the app needs to know about one endpoint.

    ``write``: changes stored data (needs a key; browsers may call it only from allow-listed origins).
    ``public``: never needs a key, even when reads do (health checks, the docs).
    ``cached``: a read with an ETag and Cache-Control.
    ``cost``: which extra rate-limit bucket a request spends from: "read" (none), "text" (it encodes a text)
    or "generation" (it drafts text, and holds a generation slot while it runs); or a function of the
    parsed arguments (``{"query": ..., "body": ...}``) giving one of these.
    ``key_in_query``: a page for iframes, which may carry a read key as ``?key=`` instead of a header.
    """

    method: str
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    write: bool = False
    public: bool = False
    cached: bool = False
    documented: bool = True
    errors: tuple[int, ...] = ()
    #: other statuses answered with the ``response`` schema (readyz's 503)
    also: tuple[int, ...] = ()
    description: str = ""
    cost: str | Callable[[dict[str, Any]], str] = "read"
    key_in_query: bool = False


def search_cost(text: str | None, filters: Iterable[str]) -> str:
    """What a search costs: a text to encode or a substring filter to scan with makes it a text query.

    Example:
        >>> search_cost(None, ["culture=french"]), search_cost(None, ["title~saint"]), search_cost("a horse", [])
        ('read', 'text', 'text')
    """
    return "text" if text is not None or any(is_substring(f) for f in filters) else "read"


def operation_of(view: Callable | None) -> Operation | None:
    return getattr(view, "operation", None)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return Response(body, status=status, mimetype="application/json", headers=dict(headers or {}))


class Resource:
    """One blueprint of endpoints sharing a tag in the docs."""

    def __init__(self, name: str, tag: str, url_prefix: str = API_PREFIX):
        self.blueprint = Blueprint(name, __name__, url_prefix=url_prefix)
        self.tag = tag

    def get(self, rule: str, **options: Any) -> Callable[[Callable], Callable]:
        return self.route(rule, "GET", **options)

    def post(self, rule: str, **options: Any) -> Callable[[Callable], Callable]:
        return self.route(rule, "POST", **options)

    def patch(self, rule: str, **options: Any) -> Callable[[Callable], Callable]:
        return self.route(rule, "PATCH", **options)

    def delete(self, rule: str, **options: Any) -> Callable[[Callable], Callable]:
        return self.route(rule, "DELETE", **options)

    def route(self, rule: str, method: str, *, summary: str, **options: Any) -> Callable[[Callable], Callable]:
        """Register the decorated view for ``method`` on ``rule``; options are Operation fields."""

        def decorator(view: Callable) -> Callable:
            operation = Operation(method=method, summary=summary, tag=self.tag, **options)

            @functools.wraps(view)
            def endpoint(**path: str) -> Response:
                parsed = g.pop("arguments", None)  # the guard parsed them when the cost depends on them
                result = view(**path, **(parse_arguments(operation) if parsed is None else parsed))
                response = result if isinstance(result, Response) else json_response(result, operation.status)
                if operation.cached and response.status_code == 200:
                    make_cacheable(response)
                elif operation.method != "GET":
                    response.headers.setdefault("Cache-Control", "no-store")
                return response

            endpoint.operation = operation  # type: ignore[attr-defined]
            self.blueprint.add_url_rule(rule, view.__name__, endpoint, methods=[method])
            return endpoint

        return decorator


def parse_arguments(operation: Operation) -> dict[str, BaseModel]:
    """The request's validated query string and body, as the operation's view takes them."""
    arguments: dict[str, BaseModel] = {}
    if operation.query is not None:
        arguments["query"] = parse_query(operation.query)
    if operation.body is not None:
        arguments["body"] = parse_body(operation.body)
    return arguments


def make_cacheable(response: Response) -> None:
    """ETag from the body and Cache-Control for a CDN; answers If-None-Match with 304."""
    max_age = current_app.config["CACHE_MAX_AGE"]
    if current_app.config["READS_NEED_KEY"]:
        response.headers["Cache-Control"] = f"private, max-age={max_age}"
        response.vary.add("X-API-Key")
    else:
        response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.add_etag()
    response.make_conditional(request)


# ------------------------------------------------------------------ validation


def _problem_from(exc: ValidationError, where: str) -> ApiProblem:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "extra_forbidden":
        message = f"unknown {where} {field!r}"
    else:
        message = f"{field}: {first['msg']}" if field else first["msg"].removeprefix("Value error, ")
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return bad_request(message, field=field or "body", kind="validation")


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(arg) for arg in get_args(annotation))


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The request's query string validated by ``model``; list fields take repeated parameters."""
    values: dict[str, Any] = {}
    for name in request.args:
        given = request.args.getlist(name)
        field = model.model_fields.get(name)
        if field is not None and _is_list(field.annotation):
            values[name] = given
        elif len(given) > 1:
            raise bad_request(f"parameter {name!r} given {len(given)} times; give it once", field=name)
        else:
            values[name] = given[0]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _problem_from(exc, "parameter") from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The request's JSON body validated by ``model``: UTF-8, a JSON value, then the schema."""
    if request.mimetype not in JSON_TYPES:
        raise ApiProblem(
            415,
            "Unsupported Media Type",
            f"send the body as application/json (got {request.mimetype or 'no Content-Type'})",
            kind="unsupported-media-type",
        )
    raw = request.get_data(cache=True)  # raises 413 beyond MAX_CONTENT_LENGTH
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"the body is not valid UTF-8 (byte {exc.start})", field="body", kind="invalid-json"
        ) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates (\ud800) cannot be stored
    except RecursionError:
        raise bad_request("the body is not valid JSON: nested too deeply", field="body", kind="invalid-json") from None
    except ValueError as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise bad_request(f"the body is not valid JSON: {detail}", field="body", kind="invalid-json") from None
    if not isinstance(data, dict):
        kind = _JSON_KINDS.get(type(data), type(data).__name__)
        raise bad_request(f"the body must be a JSON object, not {kind}", field="body", kind="validation")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _problem_from(exc, "field") from None


_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
