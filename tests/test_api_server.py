"""The main flows over a real gunicorn server (two workers) on a loopback port."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from api.testing import NO_LIMITS_ENV, LiveServer, copy_home
from critic.keys import create_key

pytestmark = pytest.mark.slow

KEY_LIMIT = 20  # requests per hour per key, on the whole server


@pytest.fixture(scope="module")
def home(built_home, tmp_path_factory):
    return copy_home(built_home, tmp_path_factory.mktemp("server") / "home")


@pytest.fixture(scope="module")
def server(home):
    env = {
        **NO_LIMITS_ENV,
        "CRITIC_KEY_RATE_LIMIT": f"{KEY_LIMIT}/hour",
        "CRITIC_CORS_ORIGINS": "https://gallery.example.org",
    }
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


def test_workers_serve_without_torch_or_scikit_learn(server, some_id):
    """The read path is numpy, FAISS and ONNX Runtime: neither torch (about 300 MB a worker) nor scikit-learn
    (about 170 MB with pandas and scipy) is mapped into any server process after searches and a critique."""
    assert requests.get(server.url(f"/api/v1/artworks/{some_id}/critique?tone=critique"), timeout=60).ok
    assert requests.post(server.url("/api/v1/similar"), json={"text": "a gilt clock", "k": 2}, timeout=30).ok
    pids = server.pids()
    assert len(pids) == 3  # the master that loaded the build and its two workers
    for pid in pids:
        with open(f"/proc/{pid}/maps") as maps:
            libraries = {line.split()[-1] for line in maps if line.rstrip().endswith(".so") or ".so." in line}
        assert not [p for p in libraries if "libtorch" in p or "/sklearn/" in p or "/scipy/" in p], pid


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


def test_rate_limits_hold_across_both_workers(server, home, some_id):
    key = {"X-API-Key": create_key(home, "server-limited")}
    # Fresh connections land on either worker; the counters are shared, so the limit is the server's.
    statuses = []
    for _ in range(KEY_LIMIT + 3):
        response = requests.get(server.url(f"/api/v1/artworks/{some_id}"), headers=key, timeout=30)
        statuses.append(response.status_code)
    assert statuses == [200] * KEY_LIMIT + [429] * 3
    assert int(response.headers["Retry-After"]) >= 1 and len(server.pids()) == 3  # the master and 2 workers


def test_two_racing_creates_of_one_id_give_201_and_409(server, home):
    key = {"X-API-Key": create_key(home, "server-racer")}

    def create(artwork_id: str) -> int:
        body = {"id": artwork_id, "title": "Race", "description": "Two galleries add the same bronze at once."}
        return requests.post(server.url("/api/v1/artworks"), json=body, headers=key, timeout=60).status_code

    with ThreadPoolExecutor(2) as pool:
        for n in range(4):
            assert sorted(pool.map(create, [f"race-{n}"] * 2)) == [201, 409]


def test_a_patch_racing_a_delete_never_resurrects_the_record(server, home):
    key = {"X-API-Key": create_key(home, "server-patcher")}
    body = {"title": "Patched", "metadata": {"note": "late"}}
    with ThreadPoolExecutor(2) as pool:
        for n in range(4):
            url = server.url(f"/api/v1/artworks/doomed-{n}")
            made = {"id": f"doomed-{n}", "title": "Doomed", "description": "A vase that is about to be removed."}
            assert requests.post(server.url("/api/v1/artworks"), json=made, headers=key, timeout=60).status_code == 201
            patched = pool.submit(requests.patch, url, json=body, headers=key, timeout=60)
            deleted = pool.submit(requests.delete, url, headers=key, timeout=60)
            assert deleted.result().status_code == 204
            assert patched.result().status_code in (200, 404, 412)
            assert requests.get(url, timeout=30).status_code == 404
            assert requests.get(url, timeout=30).status_code == 404  # whichever worker answers


def test_health_readiness_and_docs(server):
    assert requests.get(server.url("/healthz"), timeout=30).json() == {"status": "ok"}
    assert requests.get(server.url("/readyz"), timeout=30).json()["status"] == "ready"
    docs = requests.get(server.url("/docs"), timeout=30)
    assert docs.status_code == 200 and "docs.js" in docs.text
    assert requests.get(server.url("/api/v1/openapi.json"), timeout=30).json()["openapi"] == "3.1.0"
