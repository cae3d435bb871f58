"""One JSON line per request on stderr, with a request id that is echoed in ``X-Request-ID``.

A client's own ``X-Request-ID`` is kept when it is a plausible id (so a proxy's id threads through);
otherwise a fresh one is made. The app's other log records use the same JSON format.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LOGGER = "critic.api"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, message, any ``extra={"fields": {...}}``, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (servers and test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging() -> logging.Logger:
    """The app's logger, writing JSON lines to stderr (set up once per process)."""
    logger = logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def install_request_log(app: Flask) -> None:
    """Give every request an id and, when LOG_REQUESTS is on, log it when its response is ready."""
    logger = configure_logging()

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        if app.config["LOG_REQUESTS"]:
            fields = {
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
                "bytes": response.calculate_content_length(),
                "client": request.remote_addr,
                "key": g.get("key_name"),
            }
            logger.info("request", extra={"fields": fields})
        return response
