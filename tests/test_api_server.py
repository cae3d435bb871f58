"""The main flows over a real gunicorn server (two workers) on a loopback port."""

from __future__ import annotations

import pytest
import requests

from api.keys import create_key
from api.testing import LiveServer, copy_home

pytestmark = pytest.mark.slow

KEY_LIMIT = 8  # requests per minute per key and worker


@pytest.fixture(scope="module")
def home(built_home, tmp_path_factory):
    return copy_home(built_home, tmp_path_factory.mktemp("server") / "home")


@pytest.fixture(scope="module")
def server(home):
    env = {"CRITIC_KEY_RATE_LIMIT": f"{KEY_LIMIT}/minute", "CRITIC_CORS_ORIGINS": "https://gallery.example.org"}
    with LiveServer(home, workers=2, threads=4, env=env) as live:
        yield live


@pytest.fixture(scope="module")
def some_id(home):
    from critic.store import ArtworkStore

    return ArtworkStore(home.store_path).ids()[0]


def test_similar_by_id_and_by_text(server, some_id):
    by_id = requests.get(server.url(f"/api/v1/artworks/{some_id}/similar?k=3"), timeout=30)
    assert by_id.status_code == 200 and len(by_id.json()["results"]) == 3
    assert set(by_id.json()["results"][0]) >= {"id", "score", "title", "creators", "why"}
    by_text = requests.post(server.url("/api/v1/similar"), json={"text": "a carved ivory panel", "k": 3}, timeout=30)
    assert by_text.status_code == 200 and len(by_text.json()["results"]) == 3
    assert by_text.headers["Server"].startswith("gunicorn")


def test_an_added_artwork_is_searchable_at_once_on_every_worker(server, home):
    key = {"X-API-Key": create_key(home, "server-writer")}
    artwork = {
        "id": "live-1",
        "title": "Lighthouse on a rocky coast",
        "description": "A lighthouse stands on black rocks as waves break below it under a grey sky.",
        "metadata": {"batch": "live"},
    }
    assert requests.post(server.url("/api/v1/artworks"), json=artwork, timeout=30).status_code == 401
    created = requests.post(server.url("/api/v1/artworks"), json=artwork, headers=key, timeout=30)
    assert created.status_code == 201, created.text
    # Fresh connections land on either worker; each must see the write at once.
    for _ in range(6):
        assert requests.get(server.url("/api/v1/artworks/live-1"), timeout=30).json()["title"] == artwork["title"]
        similar = requests.get(server.url("/api/v1/artworks/live-1/similar?k=2"), timeout=30)
        assert similar.status_code == 200 and len(similar.json()["results"]) == 2
        listed = requests.get(server.url("/api/v1/artworks?where=metadata.batch=live"), timeout=30).json()
        assert [r["id"] for r in listed["results"]] == ["live-1"]
    query = {"text": artwork["description"], "filters": {"metadata.batch": "live"}}
    found = requests.post(server.url("/api/v1/similar"), json=query, timeout=30)
    assert [r["id"] for r in found.json()["results"]] == ["live-1"]


def test_errors_are_problems(server, some_id):
    missing = requests.get(server.url("/api/v1/artworks/no-such-id/similar"), timeout=30)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    bad_filter = requests.get(server.url(f"/api/v1/artworks/{some_id}/similar?where=colour=red"), timeout=30)
    assert bad_filter.status_code == 400 and "colour" in bad_filter.json()["detail"]
    broken = requests.post(
        server.url("/api/v1/similar"), data=b'{"text": ', headers={"Content-Type": "application/json"}, timeout=30
    )
    assert broken.status_code == 400 and "Traceback" not in broken.text


def test_cors_and_conditional_gets(server, some_id):
    url = server.url(f"/api/v1/artworks/{some_id}/similar?k=2")
    first = requests.get(url, headers={"Origin": "https://anyone.example"}, timeout=30)
    assert first.headers["Access-Control-Allow-Origin"] == "*" and first.headers["Cache-Control"].startswith("public")
    again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    preflight = requests.options(
        server.url("/api/v1/artworks"),
        headers={"Origin": "https://gallery.example.org", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://gallery.example.org"
    refused = requests.options(
        server.url("/api/v1/artworks"),
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert refused.status_code == 403


def test_rate_limit_answers_429_with_retry_after(server, home, some_id):
    key = {"X-API-Key": create_key(home, "server-limited")}
    # Each of the two workers keeps its own buckets, so at most 2 * KEY_LIMIT requests pass.
    statuses = []
    for _ in range(2 * KEY_LIMIT + 1):
        response = requests.get(server.url(f"/api/v1/artworks/{some_id}"), headers=key, timeout=30)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429 and statuses.count(200) >= KEY_LIMIT


def test_health_readiness_and_docs(server):
    assert requests.get(server.url("/healthz"), timeout=30).json() == {"status": "ok"}
    assert requests.get(server.url("/readyz"), timeout=30).json()["status"] == "ready"
    docs = requests.get(server.url("/docs"), timeout=30)
    assert docs.status_code == 200 and "docs.js" in docs.text
    assert requests.get(server.url("/api/v1/openapi.json"), timeout=30).json()["openapi"] == "3.1.0"
