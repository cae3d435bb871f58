"""Errors as RFC 9457 problem details (``application/problem+json``); no traceback ever reaches a client."""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
from collections.abc import Mapping

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from index.errors import FilterError, QueryError, UnknownArtworkError

PROBLEM_TYPE = "application/problem+json"
log = logging.getLogger("critic.api")


class ApiProblem(Exception):
    """An error the API answers with a problem document.

    ``kind`` becomes the problem ``type`` (``/docs#problem-<kind>``), ``field`` names the offending input
    (``k``, ``like.0``, ``body``) when there is one.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.field = field
        self.headers = dict(headers or {})


def bad_request(detail: str, field: str | None = None, kind: str = "invalid-request") -> ApiProblem:
    return ApiProblem(400, "Invalid request", detail, kind=kind, field=field)


def not_found(detail: str) -> ApiProblem:
    return ApiProblem(404, "Not found", detail, kind="not-found")


def problem_response(problem: ApiProblem) -> Response:
    body = {
        "type": f"/docs#problem-{problem.kind}" if problem.kind else "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.field is not None:
        body["field"] = problem.field
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    response = Response(json.dumps(body, ensure_ascii=False), status=problem.status, mimetype=PROBLEM_TYPE)
    response.headers.update(problem.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _from_http(exc: HTTPException) -> ApiProblem:
    status = exc.code or 500
    detail = exc.description or exc.name
    if status == 413:
        limit = request.max_content_length
        detail = f"the request body is larger than the limit of {limit} bytes" if limit else detail
    headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
    return ApiProblem(status, exc.name, detail, headers=headers)


def storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or the database is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error) and getattr(seen, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
            return True
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(seen, "sqlstate", None) == "53100":  # PostgreSQL's disk_full (psycopg errors carry it)
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: A full disk is the server's fault, not the client's (so not a 4xx), and not a passing overload (a 503 would
#: invite an immediate retry): 507 Insufficient Storage (RFC 4918) says the server cannot store what this
#: request needs. Every write is embedded and committed in one transaction that a full disk aborts whole, so
#: nothing of the request was stored and it can be retried as it is once there is room.
STORAGE_FULL = ApiProblem(
    507,
    "Insufficient Storage",
    "the server has no room left to store this change; nothing of it was stored, retry once space is freed",
    kind="storage-full",
)


def register_error_handlers(app: Flask) -> None:
    """Answer every failure with a problem document: known ones with their 4xx, anything else with a 500."""

    @app.errorhandler(ApiProblem)
    def _problem(exc: ApiProblem) -> Response:
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return problem_response(_from_http(exc))

    @app.errorhandler(FilterError)
    def _filter(exc: FilterError) -> Response:
        return problem_response(bad_request(str(exc), field="where", kind="invalid-filter"))

    @app.errorhandler(QueryError)
    def _query(exc: QueryError) -> Response:
        return problem_response(bad_request(str(exc), kind="invalid-query"))

    @app.errorhandler(UnknownArtworkError)
    def _unknown(exc: UnknownArtworkError) -> Response:
        return problem_response(not_found(str(exc)))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if storage_full(exc):
            log.error("disk full in %s %s (request %s): %s", request.method, request.path, g.get("request_id"), exc)
            return problem_response(STORAGE_FULL)
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, g.get("request_id"))
        return problem_response(
            ApiProblem(
                500,
                "Internal Server Error",
                "the server failed to answer this request; quote the request id when reporting it",
                kind="internal",
            )
        )
