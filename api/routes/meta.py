"""Health, readiness, the OpenAPI document and the docs page; under /api/v1 and, undocumented, at the root."""

from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, send_from_directory

from api.endpoint import Resource, json_response
from api.openapi import openapi_document
from api.runtime import runtime
from api.schemas import Health, Readiness

DOCS_PAGE = Path(__file__).resolve().parent.parent / "static" / "docs"

meta = Resource("meta", tag="meta")
meta_at_root = Resource("meta_at_root", tag="meta", url_prefix="")


def healthz() -> dict:
    return {"status": "ok"}


def readyz() -> Response:
    slot = runtime().slot
    body: dict = {"status": slot.status}
    if slot.status == "ready":
        body["artworks"] = slot.get().store.count()
    elif slot.status == "failed":
        body["detail"] = "the model and index failed to load; see the server log"
    else:
        body["detail"] = "loading the model and index"
    return json_response(body, 200 if slot.status == "ready" else 503)


def openapi() -> dict:
    document = current_app.extensions.get("critic.openapi")
    if document is None:
        document = current_app.extensions["critic.openapi"] = openapi_document(current_app)
    return document


def docs() -> Response:
    return send_from_directory(DOCS_PAGE, "index.html", mimetype="text/html", max_age=0)


for resource, documented in ((meta, True), (meta_at_root, False)):
    resource.get("/healthz", summary="The process is up", response=Health, public=True, documented=documented)(healthz)
    resource.get(
        "/readyz",
        summary="The model and index are loaded (503 until then)",
        response=Readiness,
        also=(503,),
        public=True,
        documented=documented,
    )(readyz)
    resource.get("/openapi.json", summary="This document", public=True, cached=True, documented=False)(openapi)
    resource.get("/docs", summary="Interactive API documentation", public=True, documented=False)(docs)
