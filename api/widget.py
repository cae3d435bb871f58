"""Embedding the service in other sites: the drop-in widget, the iframe page, oEmbed, and the demo gallery.

- ``GET /widget.js``: a dependency-free script; galleries paste it with a ``data-critic-similar`` or
  ``data-critic-critique`` element and it renders from the JSON API (cross-origin reads are open).
- ``GET /embed/similar/<id>``: the similar-works strip as a page other sites may frame.
- ``GET /oembed?url=...``: oEmbed 1.0 (type ``rich``) for the artwork and embed page URLs of this host.
- ``GET /``: the demo gallery (search, filters, artwork pages, similar works, drafted critiques), and
  ``GET /demo/facets``: the filter values it offers.

Pages run only same-origin scripts and styles, never inline ones; catalog strings reach them as JSON and are
set as text, and the embed page is rendered by Jinja with autoescaping.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Blueprint, Response, current_app, g, render_template, request, send_from_directory, url_for
from markupsafe import escape
from pydantic import ConfigDict, Field, StringConstraints

from api.endpoint import API_PREFIX, Resource, json_response
from api.problems import ApiProblem, not_found
from api.runtime import FACET_FIELDS, current_service, runtime
from api.schemas import Params
from api.security import frameable
from critic.records import Artwork

ASSETS = Path(__file__).resolve().parent / "static" / "embed"
PROVIDER_NAME = "critic"
DEFAULT_K, MAX_K = 6, 24
# The iframe's size when the consumer sets no limit: one row of the strip at a readable item width.
EMBED_WIDTH, EMBED_HEIGHT = 640, 340
OEMBED_CACHE_AGE_S = 3600
WIDGET_MAX_AGE_S = 300
MAX_FACET_VALUES = 200

# Catalog images are often plain http (the Walters export is), hence http: in img-src; nothing else loads
# from elsewhere, and no inline script or style runs anywhere.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
)
DEMO_CSP = _PAGE_CSP.format(ancestors="'none'")
EMBED_CSP = _PAGE_CSP.format(ancestors="*")

embed_bp = Blueprint("embed", __name__, static_folder=ASSETS, static_url_path="/assets", template_folder="templates")
# The JSON endpoints go through the API's own machinery (validation, rate limits, keys, OpenAPI); nested
# in embed_bp, so one registration serves everything here.
embed_api = Resource("api", tag="embed", url_prefix="")
SIMILAR_PAGE = "embed.api.similar_page"
OEMBED = "embed.api.oembed"


@embed_bp.after_request
def _shareable_assets(response: Response) -> Response:
    # The widget and its stylesheet and placeholder load into other sites' pages, including ones that
    # isolate themselves (COEP) or fetch with CORS (Subresource Integrity).
    if request.endpoint in ("embed.static", "embed.widget_js"):
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@embed_bp.get("/")
def demo() -> Response:
    """The demo gallery: one static page, routed client-side by the URL fragment."""
    response = send_from_directory(ASSETS, "gallery.html", mimetype="text/html", max_age=0)
    response.headers["Content-Security-Policy"] = DEMO_CSP
    return response


@embed_bp.get("/widget.js")
def widget_js() -> Response:
    return send_from_directory(ASSETS, "widget.js", mimetype="text/javascript", max_age=WIDGET_MAX_AGE_S)


class EmbedPageParams(Params):
    """The embed page's options; other parameters (a CMS's tracking ones) are ignored."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    diversity: float = Field(default=0.0, ge=0, le=1)


def _record_or_none(artwork_id: str) -> Artwork | None:
    return current_service().store.get(artwork_id)


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL for links that leave the response: from PUBLIC_URL when set, else from the Host the
    request was sent to (never from X-Forwarded-Host, which ProxyFix is not told to trust)."""
    base = current_app.config["PUBLIC_URL"]
    return base + url_for(endpoint, **values) if base else url_for(endpoint, _external=True, **values)


def _public_root() -> str:
    return current_app.config["PUBLIC_URL"] + "/" if current_app.config["PUBLIC_URL"] else request.host_url


@embed_api.get(
    "/embed/similar/<artwork_id>",
    summary="The similar-works strip as a page for iframes",
    query=EmbedPageParams,
    cached=True,
    documented=False,
    key_in_query=True,
)
@frameable
def similar_page(artwork_id: str, query: EmbedPageParams) -> Response:
    """The similar-works strip of one artwork as a page to put in an iframe (``?k=`` and ``?diversity=``).

    When reads need a key, the page proves itself with a read key in its URL (``?key=``), which it hands
    to the widget to send as X-API-Key."""
    key = g.get("key_in_url")
    try:
        record = _record_or_none(artwork_id)
        known = record is not None
    except ApiProblem:  # still loading: serve the page, the widget says so if the API cannot answer yet
        record, known = None, True
    page_url = public_url(SIMILAR_PAGE, artwork_id=artwork_id, **({"key": key} if key else {}))
    page = render_template(
        "embed/similar.html",
        artwork_id=artwork_id,
        title=record.title if record else "",
        known=known,
        k=query.k,
        diversity=query.diversity,
        key=key or "",
        oembed_url=public_url(OEMBED, url=page_url, **({"key": key} if key else {})),
    )
    response = Response(page, status=200 if known else 404, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMBED_CSP
    return response


def embedded_artwork(url: str, host: str) -> tuple[str, int | None] | None:
    """The artwork id (and ``k``, if the URL sets one) that an oEmbed ``url`` of this ``host`` points at.

    Understood: the embed page ``/embed/similar/<id>``, the demo's ``/#/artwork/<id>`` and the API's
    ``/api/v1/artworks/<id>``; anything else, or another host, is None.

    Example:
        >>> embedded_artwork("https://critic.example/embed/similar/37?k=4", "critic.example")
        ('37', 4)
        >>> embedded_artwork("https://critic.example/#/artwork/W%2037", "critic.example")
        ('W 37', None)
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
        return None
    patterns = (
        (parts.path, r"/embed/similar/([^/]+)"),
        (parts.path, re.escape(API_PREFIX) + r"/artworks/([^/]+)"),
        (parts.fragment if parts.path in ("", "/") else "", r"/artwork/([^/?]+)"),
    )
    for text, pattern in patterns:
        match = re.fullmatch(pattern, text)
        if match:
            k = parse_qs(parts.query).get("k", [""])[0]
            return unquote(match.group(1)), int(k) if re.fullmatch(r"\d{1,3}", k) else None
    return None


class OEmbedParams(Params):
    """oEmbed's query string. Unknown parameters are ignored, as consumers send their own (``dnt``...)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="An embed page (/embed/similar/<id>), demo artwork page (/#/artwork/<id>) or API "
        "record URL (/api/v1/artworks/<id>) of this host; ?k= on an embed page URL is kept."
    )
    format: str = Field(default="json", description="json (xml is answered 501, as oEmbed asks).")
    maxwidth: int | None = Field(default=None, ge=1, le=100_000, description="Widest iframe the consumer takes.")
    maxheight: int | None = Field(default=None, ge=1, le=100_000, description="Tallest iframe the consumer takes.")


@embed_api.get(
    "/oembed",
    summary="oEmbed for the similar-works strip",
    query=OEmbedParams,
    cached=True,
    # Not in /openapi.json: oEmbed's own spec documents it, and asks for a 501 (a server error to OpenAPI
    # tooling) when a consumer wants XML.
    documented=False,
    key_in_query=True,
)
def oembed(query: OEmbedParams) -> Response:
    """oEmbed 1.0 (https://oembed.com): an artwork or embed page URL of this host as an iframe of its
    similar works (type ``rich``). Only format=json is served."""
    if query.format != "json":
        raise ApiProblem(
            501, "Not Implemented", f"format {query.format!r} is not served; use format=json", field="format"
        )
    root = _public_root()
    target = embedded_artwork(query.url, urlsplit(root).netloc)
    if target is None:
        raise not_found(f"no embeddable artwork at {query.url!r}: use {root}embed/similar/<id>")
    artwork_id, k = target
    record = _record_or_none(artwork_id)
    if record is None:
        raise not_found(f"unknown artwork id {artwork_id!r}")
    width = min(EMBED_WIDTH, query.maxwidth or EMBED_WIDTH)
    height = min(EMBED_HEIGHT, query.maxheight or EMBED_HEIGHT)
    key = g.get("key_in_url")  # the read key the consumer was given travels on to the iframe
    src = public_url(
        SIMILAR_PAGE, artwork_id=artwork_id, k=min(max(k or DEFAULT_K, 1), MAX_K), **({"key": key} if key else {})
    )
    label = f"Artworks similar to {record.title}" if record.title else "Similar artworks"
    html = (
        f'<iframe src="{escape(src)}" width="{width}" height="{height}" title="{escape(label)}" '
        'loading="lazy" frameborder="0" style="border:0;max-width:100%"></iframe>'
    )
    body: dict[str, Any] = {
        "version": "1.0",
        "type": "rich",
        "title": record.title,
        "provider_name": PROVIDER_NAME,
        "provider_url": root,
        "cache_age": OEMBED_CACHE_AGE_S,
        "html": html,
        "width": width,
        "height": height,
    }
    if record.creators:
        body["author_name"] = "; ".join(record.creators)
    # Editors in the browser fetch it too; it is public data like the API's reads.
    return json_response(body, headers={"Access-Control-Allow-Origin": "*"})


def facet_counts(counts: Mapping[str, Counter[str]]) -> dict[str, list[dict]]:
    """Each field's values with their record counts, most common first (at most MAX_FACET_VALUES).

    Example:
        >>> facet_counts({"period": Counter({"Edo": 2, "Meiji": 1})})
        {'period': [{'value': 'Edo', 'count': 2}, {'value': 'Meiji', 'count': 1}]}
    """
    facets = {}
    for name, counted in counts.items():
        ranked = sorted(counted.items(), key=lambda item: (-item[1], item[0].lower()))
        facets[name] = [{"value": value, "count": count} for value, count in ranked[:MAX_FACET_VALUES]]
    return facets


@embed_api.get("/demo/facets", summary="The demo gallery's filter values", cached=True, documented=False)
def demo_facets() -> dict:
    """The demo's filter choices, counted as records change (the catalog keeps the counts current)."""
    catalog = runtime().catalog(current_service())
    return facet_counts({name: catalog.counts(name) for name in FACET_FIELDS})


embed_bp.register_blueprint(embed_api.blueprint)
