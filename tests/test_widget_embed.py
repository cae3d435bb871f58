"""The embedding surface without a browser: widget.js, the iframe page, oEmbed, the demo page and its policies."""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from api import create_app
from api.catalog import Catalog
from api.testing import NO_LIMITS, copy_home
from api.widget import ASSETS, EMBED_HEIGHT, EMBED_WIDTH, embed_bp, embedded_artwork, facet_counts
from critic.keys import create_key
from critic.records import Artwork
from critic.service import Service
from critic.store import ArtworkStore

HOSTILE = Artwork(
    id="hostile-2",
    title='"><script>alert(1)</script>',
    creators=["<b>Someone</b>"],
    description="A small bronze figure of a dancer.",
    classification="Sculpture",
)


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    service = Service.load(copy_home(built_home, tmp_path_factory.mktemp("embed") / "home"), log=lambda _: None)
    service.upsert([HOSTILE])
    return service


@pytest.fixture(scope="module")
def app(service):
    app = create_app({**NO_LIMITS, "LOG_REQUESTS": False}, service=service)
    if "embed" not in app.blueprints:  # until api.app registers it
        app.register_blueprint(embed_bp)
    return app


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def some_record(service) -> Artwork:
    return next(r for r in service.store.all() if r.title and r.creators)


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> and <style> elements."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline_code: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._inside = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._inside = None

    def handle_data(self, data):
        if self._inside and data.strip():
            self.inline_code.append(data)


def parse(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    return tags


def csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def assert_no_inline_code(response) -> _Tags:
    """The page runs and styles nothing inline, and its policy would refuse it if it did."""
    page = parse(response.get_data(as_text=True))
    assert not page.inline_code
    assert all("style" not in attrs and not any(a.startswith("on") for a in attrs) for _, attrs in page.tags)
    policy = csp(response)
    assert policy["script-src"] == "script-src 'self'" and policy["style-src"] == "style-src 'self'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    return page


# ------------------------------------------------------------------ widget.js


def test_widget_script_is_served_to_other_sites(client):
    response = client.get("/widget.js", headers={"Origin": "https://gallery.example"})
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "max-age=300" in response.headers["Cache-Control"]
    assert b"window.CriticWidget" in response.data
    for asset in ("widget.css", "placeholder.svg"):
        shared = client.get(f"/assets/{asset}")
        assert shared.status_code == 200
        assert shared.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("script", ["widget.js", "gallery.js"])
def test_scripts_build_the_dom_without_parsing_html(script):
    source = (ASSETS / script).read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)  # comments may mention what is avoided
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
        'setAttribute("style"',
        "srcdoc",
        "javascript:",
    ):
        assert sink not in code, f"{script} uses {sink}"


# ------------------------------------------------------------------ the demo


def test_demo_page_loads_only_same_origin_code(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = assert_no_inline_code(response)
    assert csp(response)["frame-ancestors"] == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    linked = [a["src"] for tag, a in page.tags if tag == "script"]
    linked += [a["href"] for tag, a in page.tags if tag == "link"]
    assert "/widget.js" in linked and "/assets/gallery.js" in linked
    for path in linked:
        assert path.startswith("/") and not path.startswith("//"), path
        assert client.get(path).status_code == 200, path


def test_demo_facets_count_the_collection(client, service):
    response = client.get("/demo/facets")
    assert response.status_code == 200
    facets = response.get_json()
    records = service.store.all()
    for name in ("classification", "period", "culture"):
        expected = Counter(getattr(r, name) for r in records if getattr(r, name))
        assert {f["value"]: f["count"] for f in facets[name]} == dict(expected)
        counts = [f["count"] for f in facets[name]]
        assert counts == sorted(counts, reverse=True)


def test_facet_counts_leave_out_empty_values_and_rank_by_count():
    store = ArtworkStore(":memory:")
    store.upsert_many([Artwork(id=str(i), period=p) for i, p in enumerate(["Edo", "", "Meiji", "Edo", "  "])])
    catalog = Catalog(store, counted=("period",))
    assert facet_counts({"period": catalog.counts("period")}) == {
        "period": [{"value": "Edo", "count": 2}, {"value": "Meiji", "count": 1}]
    }
    # Counted as records change, not recounted.
    store.upsert_many([Artwork(id="1", period="Meiji")])
    store.delete("0")
    assert facet_counts({"period": catalog.counts("period")}) == {
        "period": [{"value": "Meiji", "count": 2}, {"value": "Edo", "count": 1}]
    }


# ------------------------------------------------------------------ the iframe page


def test_embed_page_may_be_framed_anywhere_but_runs_no_inline_code(client, some_record):
    response = client.get(f"/embed/similar/{some_record.id}?k=3&diversity=0.5")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    assert csp(response)["frame-ancestors"] == "frame-ancestors *"
    page = assert_no_inline_code(response)
    (strip,) = [attrs for _, attrs in page.tags if "data-critic-similar" in attrs]
    assert strip["data-critic-similar"] == some_record.id
    assert strip["data-k"] == "3" and strip["data-diversity"] == "0.5"
    (discovery,) = [a for tag, a in page.tags if tag == "link" and a.get("type") == "application/json+oembed"]
    assert client.get(discovery["href"]).status_code == 200


def test_embed_page_is_guarded_like_the_api_and_proves_itself_with_a_read_key(service, some_record):
    closed = create_app(
        {**NO_LIMITS, "READS_NEED_KEY": True, "LOG_REQUESTS": False, "RUN_DIR": tempfile.mkdtemp()}, service=service
    ).test_client()
    page = f"/embed/similar/{some_record.id}"
    assert closed.get(page).status_code == 401
    read_key = create_key(service.home, "embed-reader", scope="read")
    shown = closed.get(page, query_string={"key": read_key, "k": 3})
    assert shown.status_code == 200 and shown.headers["Cache-Control"].startswith("private")
    (strip,) = [attrs for _, attrs in parse(shown.get_data(as_text=True)).tags if "data-critic-similar" in attrs]
    assert strip["data-critic-key"] == read_key  # the widget sends it as X-API-Key
    api = f"/api/v1/artworks/{some_record.id}/similar"
    assert closed.get(api, headers={"X-API-Key": read_key}).status_code == 200
    tags = parse(shown.get_data(as_text=True)).tags
    (discovery,) = [a for _, a in tags if a.get("type") == "application/json+oembed"]
    oembed = closed.get(discovery["href"])
    assert oembed.status_code == 200 and f"key={read_key}" in oembed.get_json()["html"]
    write_key = create_key(service.home, "embed-writer")
    leaked = closed.get(page, query_string={"key": write_key})
    assert leaked.status_code == 403 and leaked.get_json()["type"].endswith("key-in-url")
    assert closed.get(page, query_string={"key": "critic_guess"}).status_code == 401
    # The API's own endpoints take keys in headers only.
    assert closed.get(f"/api/v1/artworks/{some_record.id}", query_string={"key": read_key}).status_code == 401
    limited = create_app(
        {**NO_LIMITS, "RATE_LIMIT": "2/hour", "LOG_REQUESTS": False, "RUN_DIR": tempfile.mkdtemp()}, service=service
    ).test_client()
    assert [limited.get(page).status_code for _ in range(3)] == [200, 200, 429]


def test_embed_page_escapes_what_it_shows(client):
    response = client.get(f"/embed/similar/{HOSTILE.id}")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert" not in text
    (strip,) = [attrs for _, attrs in parse(text).tags if "data-critic-similar" in attrs]
    assert strip["data-heading"] == f"Similar to {HOSTILE.title}"

    missing = client.get("/embed/similar/" + quote('<img src=x onerror="alert(1)">', safe=""))
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "<img" not in missing.get_data(as_text=True)
    assert "&lt;img src=x" in missing.get_data(as_text=True)


@pytest.mark.parametrize("query", ["k=0", "k=25", "k=two", "diversity=1.5", "diversity=nan"])
def test_embed_page_refuses_bad_options(client, some_record, query):
    response = client.get(f"/embed/similar/{some_record.id}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


# ------------------------------------------------------------------ oEmbed


def oembed(client, url: str, **params):
    return client.get("/oembed", query_string={"url": url, **params})


@pytest.mark.parametrize(
    "path", ["/embed/similar/{id}", "/#/artwork/{id}", "/api/v1/artworks/{id}", "/embed/similar/{id}?k=6"]
)
def test_oembed_describes_a_rich_iframe(client, some_record, path):
    response = oembed(client, "http://localhost" + path.format(id=quote(some_record.id, safe="")), format="json")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body = response.get_json()
    assert body["version"] == "1.0" and body["type"] == "rich"
    assert body["provider_name"] == "critic" and body["provider_url"] == "http://localhost/"
    assert body["title"] == some_record.title
    assert body["author_name"] == "; ".join(some_record.creators)
    assert (body["width"], body["height"]) == (EMBED_WIDTH, EMBED_HEIGHT)
    (iframe,) = parse(body["html"]).tags
    assert iframe[0] == "iframe"
    assert (iframe[1]["width"], iframe[1]["height"]) == (str(EMBED_WIDTH), str(EMBED_HEIGHT))
    src = urlsplit(iframe[1]["src"])
    assert src.path == f"/embed/similar/{quote(some_record.id, safe='')}"
    assert parse_qs(src.query) == {"k": ["6"]}
    assert client.get(iframe[1]["src"]).status_code == 200


def test_oembed_honours_the_consumers_size_limits_and_k(client, some_record):
    url = f"http://localhost/embed/similar/{some_record.id}?k=3"
    body = oembed(client, url, maxwidth=320, maxheight=200).get_json()
    assert (body["width"], body["height"]) == (320, 200)
    (iframe,) = parse(body["html"]).tags
    assert (iframe[1]["width"], iframe[1]["height"]) == ("320", "200")
    assert iframe[1]["src"].endswith("?k=3")
    roomy = oembed(client, f"http://localhost/embed/similar/{some_record.id}", maxwidth=5000).get_json()
    assert roomy["width"] == EMBED_WIDTH


def test_oembed_escapes_the_title_in_its_html(client):
    body = oembed(client, f"http://localhost/embed/similar/{HOSTILE.id}").get_json()
    assert body["title"] == HOSTILE.title  # JSON carries the text as it is
    assert "<script>" not in body["html"]
    (iframe,) = parse(body["html"]).tags
    assert iframe[1]["title"] == f"Artworks similar to {HOSTILE.title}"


@pytest.mark.parametrize(
    "url",
    [
        "http://elsewhere.example/embed/similar/{id}",
        "http://localhost/somewhere/{id}",
        "http://localhost/embed/similar/no-such-artwork",
        "ftp://localhost/embed/similar/{id}",
        "not a url",
    ],
)
def test_oembed_answers_404_for_urls_it_cannot_embed(client, some_record, url):
    response = oembed(client, url.format(id=some_record.id))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_oembed_serves_json_only(client, some_record):
    url = f"http://localhost/embed/similar/{some_record.id}"
    assert oembed(client, url, format="xml").status_code == 501
    assert oembed(client, url, format="yaml").status_code == 501


@pytest.mark.parametrize("params", [{}, {"maxwidth": "wide"}, {"maxheight": "0"}, {"maxwidth": "-5"}])
def test_oembed_refuses_bad_parameters(client, some_record, params):
    query = {"url": f"http://localhost/embed/similar/{some_record.id}", **params}
    if not params:
        query.pop("url")
    response = client.get("/oembed", query_string=query)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_embedded_artwork_reads_the_three_url_forms():
    host = "critic.example:8000"
    assert embedded_artwork("https://critic.example:8000/embed/similar/W%2F1?k=4", host) == ("W/1", 4)
    assert embedded_artwork("http://CRITIC.example:8000/#/artwork/37", host) == ("37", None)
    assert embedded_artwork("http://critic.example:8000/api/v1/artworks/37", host) == ("37", None)
    assert embedded_artwork("http://critic.example:8000/embed/similar/37?k=lots", host) == ("37", None)
    assert embedded_artwork("http://critic.example/embed/similar/37", host) is None  # another port
    assert embedded_artwork("http://critic.example:8000/docs#/artwork/37", host) is None
    assert embedded_artwork("javascript:alert(1)//critic.example:8000/embed/similar/37", host) is None
