"""API keys, CORS, rate limits and security headers, applied to every request by the Operation it targets.

- Writes (``Operation.write``) need a valid ``X-API-Key``; reads too when READS_NEED_KEY is on. A key that
  is sent must be valid, whatever the endpoint.
- CORS: reads are public data, so any origin may read (``Access-Control-Allow-Origin: *``); browsers may
  write only from CORS_ORIGINS (or the API's own origin). Preflights are answered here.
- Rate limits: one token bucket per key, else per client IP; 429 with Retry-After when empty.
- Headers: nosniff, no-referrer, a strict CSP and ``X-Frame-Options: DENY`` on everything except views
  marked ``@frameable`` (the embeddable pages), which may be framed by any site.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, g, request

from api.endpoint import API_PREFIX, Operation, operation_of
from api.problems import ApiProblem
from api.runtime import Runtime, runtime

ALLOWED_REQUEST_HEADERS = "Content-Type, X-API-Key, X-Request-ID, If-None-Match"
EXPOSED_HEADERS = "ETag, Location, Retry-After, X-Request-ID, RateLimit-Limit, RateLimit-Remaining"
PREFLIGHT_MAX_AGE_S = 600
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
)


def frameable(view: Callable) -> Callable:
    """Mark a view whose pages other sites may show in an iframe (the embed pages).

    Its responses get no ``X-Frame-Options`` and a page CSP with ``frame-ancestors *``; a view can still
    set its own ``Content-Security-Policy`` header, which is then left as it is.
    """
    view.frameable = True  # type: ignore[attr-defined]
    return view


def _view() -> Callable | None:
    return current_app.view_functions.get(request.endpoint) if request.endpoint else None


def _may_write_from(origin: str) -> bool:
    allowed = current_app.config["CORS_ORIGINS"]
    return "*" in allowed or origin in allowed or origin == request.host_url.rstrip("/")


def _forbidden_origin(origin: str) -> ApiProblem:
    return ApiProblem(
        403,
        "Forbidden",
        f"origin {origin} may not write to this API; add it to CRITIC_CORS_ORIGINS",
        kind="origin-not-allowed",
    )


def _preflight() -> Response | None:
    """Answer a CORS preflight for the method it asks about; None lets Flask answer a plain OPTIONS."""
    origin = request.headers.get("Origin")
    method = request.headers.get("Access-Control-Request-Method", "").upper()
    if not origin or not method:
        return None
    # An unknown path or method raises NotFound/MethodNotAllowed here: a 404/405 problem.
    endpoint, _ = current_app.url_map.bind_to_environ(request.environ).match(method=method)
    operation = operation_of(current_app.view_functions.get(endpoint))
    if operation is None:
        return None
    if operation.write and not _may_write_from(origin):
        raise _forbidden_origin(origin)
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin if operation.write else "*"
    response.headers["Access-Control-Allow-Methods"] = method
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    if operation.write:
        response.vary.add("Origin")
    return response


def _guard() -> Response | None:
    if request.method == "OPTIONS":
        return _preflight()
    operation = operation_of(_view())
    if operation is None:
        return None
    origin = request.headers.get("Origin")
    if operation.write and origin and not _may_write_from(origin):
        raise _forbidden_origin(origin)
    state = runtime()
    token = request.headers.get("X-API-Key")
    g.key_name = state.keys.verify(token) if token is not None else None
    if not operation.public:
        _take_token(state, g.key_name)
    if token is not None and g.key_name is None:
        raise ApiProblem(401, "Unauthorized", "the X-API-Key header holds no valid key", kind="bad-key")
    needs_key = operation.write or (current_app.config["READS_NEED_KEY"] and not operation.public)
    if needs_key and g.key_name is None:
        what = "writes" if operation.write else "this server's reads"
        raise ApiProblem(
            401,
            "Unauthorized",
            f"{what} need an API key in the X-API-Key header (critic keys create NAME)",
            kind="key-required",
        )
    return None


def _take_token(state: Runtime, key_name: str | None) -> None:
    buckets = state.key_limits if key_name else state.anonymous_limits
    if buckets is None:
        return
    decision = buckets.take(f"key:{key_name}" if key_name else f"ip:{request.remote_addr}")
    g.rate_headers = {"RateLimit-Limit": str(buckets.rate.capacity), "RateLimit-Remaining": str(decision.remaining)}
    if not decision.allowed:
        raise ApiProblem(
            429,
            "Too Many Requests",
            f"rate limit of {buckets.rate.capacity} requests per {buckets.rate.period:g} s reached; "
            f"retry in {decision.retry_after} s",
            kind="rate-limited",
            headers={"Retry-After": str(decision.retry_after)},
        )


def _add_cors(response: Response, operation: Operation | None) -> None:
    origin = request.headers.get("Origin")
    if not origin or request.method == "OPTIONS" or not request.path.startswith(API_PREFIX):
        return
    if operation is not None and operation.write:
        if _may_write_from(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
    else:
        response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


def _secure(response: Response) -> Response:
    view = _view()
    framed = getattr(view, "frameable", False)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", PAGE_CSP.format(ancestors="*" if framed else "'none'"))
    else:
        headers.setdefault("Content-Security-Policy", JSON_CSP)
    if not framed:
        headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    headers.update(g.get("rate_headers", {}))
    _add_cors(response, operation_of(view))
    return response


def install_security(app: Flask) -> None:
    app.before_request(_guard)
    app.after_request(_secure)
