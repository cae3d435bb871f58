"""API keys, CORS, rate limits and security headers, applied to every request by the Operation it targets.

- Writes (``Operation.write``) need a valid ``X-API-Key`` of scope ``write`` (a read key gets 403); reads
  too need a key when READS_NEED_KEY is on. A key that is sent must be valid, whatever the endpoint. Pages
  meant for iframes (``Operation.key_in_query``) may carry a read key as ``?key=``; a write key may not
  travel in a URL.
- CORS: reads are public data, so any origin may read (``Access-Control-Allow-Origin: *``, whatever the
  Origin); browsers may write only from CORS_ORIGINS (or the API's own origin), and those answers vary by
  Origin. Preflights are answered here.
- Rate limits: token buckets per key, else per client IP (IPv6 by /64), shared by every worker; text
  queries and generations also spend from their own, smaller buckets. Generations hold one of
  MAX_GENERATIONS server-wide slots while they run; with none free the answer is 503 with Retry-After.
- Headers: nosniff, no-referrer, a strict CSP and ``X-Frame-Options: DENY`` on everything except views
  marked ``@frameable`` (the embeddable pages), which may be framed by any site.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from api.endpoint import API_PREFIX, Operation, operation_of, parse_arguments
from api.problems import ApiProblem
from api.ratelimit import Charge, client_address
from api.runtime import Runtime, runtime
from critic.keys import ApiKey

ALLOWED_REQUEST_HEADERS = "Content-Type, X-API-Key, X-Request-ID, If-None-Match"
EXPOSED_HEADERS = "ETag, Location, Retry-After, X-Request-ID, RateLimit-Limit, RateLimit-Remaining"
PREFLIGHT_MAX_AGE_S = 600
#: What a client is told to wait when every generation slot is taken: about one generation.
BUSY_RETRY_S = 2
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
    in_url = token is None and operation.key_in_query and "key" in request.args
    if in_url:
        token = request.args.get("key")
    key = state.keys.verify(token) if token is not None else None
    g.key_name = key.name if key else None
    cost, refused = operation.cost, None
    if callable(cost):
        # What a request costs depends on what it asks (a text or an id): parse it now, once; a request that
        # does not parse is charged as a read and refused below, after the key checks.
        try:
            g.arguments = parse_arguments(operation)
            cost = cost(g.arguments)
        except (ApiProblem, HTTPException) as exc:
            cost, refused = "read", exc
    if not operation.public:
        _take_tokens(state, key, cost)
    if token is not None and key is None:
        where = "the key in the URL" if in_url else "the X-API-Key header"
        raise ApiProblem(401, "Unauthorized", f"{where} holds no valid key", kind="bad-key")
    if in_url and key is not None and key.can_write:
        raise ApiProblem(
            403,
            "Forbidden",
            "a write key may not travel in a URL (it would leak into logs and caches); use a read key "
            "(critic keys create NAME --scope read)",
            kind="key-in-url",
            field="key",
        )
    g.key_in_url = token if in_url else None
    needs_key = operation.write or (current_app.config["READS_NEED_KEY"] and not operation.public)
    if needs_key and key is None:
        what = "writes" if operation.write else "this server's reads"
        raise ApiProblem(
            401,
            "Unauthorized",
            f"{what} need an API key in the X-API-Key header (critic keys create NAME)",
            kind="key-required",
        )
    if operation.write and key is not None and not key.can_write:
        raise ApiProblem(
            403, "Forbidden", f"key {key.name!r} may only read; writes need a write key", kind="read-only-key"
        )
    if refused is not None:
        raise refused
    if cost == "generation" and state.generations is not None:
        slot = state.generations.acquire()
        if slot is None:
            raise ApiProblem(
                503,
                "Service Unavailable",
                f"all {state.generations.size} generation slots of this server are busy; retry in {BUSY_RETRY_S} s",
                kind="busy",
                headers={"Retry-After": str(BUSY_RETRY_S)},
            )
        g.generation_slot = slot
    return None


def _release_generation(_exc: BaseException | None) -> None:
    slot = g.pop("generation_slot", None)
    if slot is not None:
        runtime().generations.release(slot)


def _take_tokens(state: Runtime, key: ApiKey | None, cost: str) -> None:
    rates = state.limits.key if key else state.limits.ip
    who = f"key:{key.name}" if key else f"ip:{client_address(request.remote_addr)}"
    costs = ("read",) if cost == "read" else ("read", cost)
    charges = [Charge(who if name == "read" else f"{name}:{who}", rates[name]) for name in costs if name in rates]
    if not charges:
        return
    decision = state.counters.take(charges)
    g.rate_headers = {"RateLimit-Limit": str(decision.rate.capacity), "RateLimit-Remaining": str(decision.remaining)}
    if not decision.allowed:
        what = "" if decision.name == who else decision.name.split(":", 1)[0] + " "
        raise ApiProblem(
            429,
            "Too Many Requests",
            f"rate limit of {decision.rate.capacity} {what}requests per {decision.rate.period:g} s reached; "
            f"retry in {decision.retry_after} s",
            kind="rate-limited",
            headers={"Retry-After": str(decision.retry_after)},
        )


def _add_cors(response: Response, operation: Operation | None) -> None:
    if request.method == "OPTIONS" or not request.path.startswith(API_PREFIX):
        return
    origin = request.headers.get("Origin")
    if operation is not None and operation.write:
        response.vary.add("Origin")  # whether the origin is echoed depends on it
        if origin and _may_write_from(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
    else:
        # The same for every origin and for none, so a shared cache may serve it to anyone.
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
    app.teardown_request(_release_generation)
