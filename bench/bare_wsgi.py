"""bench/api.py's anchor: gunicorn answering each recorded URL with the recorded JSON body and nothing else.

No Flask, no search, no middleware: what is left is HTTP and gunicorn, the floor under `critic serve`.
``BARE_BODIES`` names a JSON file ``{path with query: body}``; other paths get a 404.

    BARE_BODIES=bodies.json gunicorn --chdir bench --worker-class gthread --workers 2 --threads 4 bare_wsgi:app
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

with open(os.environ["BARE_BODIES"], encoding="utf-8") as recorded:
    BODIES = {path: body.encode() for path, body in json.load(recorded).items()}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    query = environ.get("QUERY_STRING", "")
    body = BODIES.get(environ.get("PATH_INFO", "") + (f"?{query}" if query else ""))
    if body is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
