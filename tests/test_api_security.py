"""API keys, CORS, rate limits, security headers and request ids."""

from __future__ import annotations

import json

import pytest
from flask import Blueprint

from api import create_app
from api.config import Rate
from api.keys import KEY_FILE, KeyNameError, create_key, list_keys, revoke_key
from api.ratelimit import TokenBuckets
from api.security import frameable
from api.testing import copy_home
from critic.service import Service

GALLERY = "https://gallery.example.org"


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    return Service.load(copy_home(built_home, tmp_path_factory.mktemp("security") / "home"), log=lambda _: None)


def make_client(service: Service, **config):
    settings = {"RATE_LIMIT": "off", "KEY_RATE_LIMIT": "off", "LOG_REQUESTS": False, **config}
    return create_app(settings, service=service).test_client()


@pytest.fixture(scope="module")
def client(service):
    return make_client(service, CORS_ORIGINS=[GALLERY])


@pytest.fixture(scope="module")
def some_id(service):
    return service.store.ids()[0]


def new_artwork(artwork_id: str) -> dict:
    return {"id": artwork_id, "title": "Harbour at dusk", "description": "Boats moored in a quiet harbour at dusk."}


def test_keys_are_stored_hashed_and_can_be_revoked(tmp_path):
    token = create_key(tmp_path, "gallery")
    assert token.startswith("critic_") and len(token) > 40
    stored = (tmp_path / KEY_FILE).read_bytes()
    assert token.encode() not in stored and token.removeprefix("critic_").encode() not in stored
    assert [(k.name, k.active) for k in list_keys(tmp_path)] == [("gallery", True)]
    with pytest.raises(KeyNameError, match="exists"):
        create_key(tmp_path, "gallery")
    with pytest.raises(KeyNameError, match="bad key name"):
        create_key(tmp_path, "no spaces please")
    assert revoke_key(tmp_path, "gallery") and not revoke_key(tmp_path, "gallery")
    assert not list_keys(tmp_path)[0].active
    assert create_key(tmp_path, "gallery") != token  # a revoked name can be reissued


def test_writes_need_a_valid_key(client, service):
    body = client.post("/api/v1/artworks", json=new_artwork("sec-1")).get_json()
    assert body["status"] == 401 and body["type"].endswith("key-required")
    wrong = client.post("/api/v1/artworks", json=new_artwork("sec-1"), headers={"X-API-Key": "critic_nope"})
    assert wrong.status_code == 401 and wrong.get_json()["type"].endswith("bad-key")
    token = create_key(service.home, "writer")
    assert client.post("/api/v1/artworks", json=new_artwork("sec-1"), headers={"X-API-Key": token}).status_code == 201
    assert client.delete("/api/v1/artworks/sec-1").status_code == 401
    revoke_key(service.home, "writer")
    assert client.delete("/api/v1/artworks/sec-1", headers={"X-API-Key": token}).status_code == 401
    assert service.store.get("sec-1") is not None


def test_reads_are_open_unless_configured(service, some_id):
    open_client = make_client(service)
    assert open_client.get(f"/api/v1/artworks/{some_id}").status_code == 200
    closed = make_client(service, READS_NEED_KEY=True)
    assert closed.get(f"/api/v1/artworks/{some_id}").status_code == 401
    assert closed.post("/api/v1/similar", json={"id": some_id}).status_code == 401
    assert closed.get("/healthz").status_code == 200 and closed.get("/api/v1/openapi.json").status_code == 200
    token = create_key(service.home, "reader")
    response = closed.get(f"/api/v1/artworks/{some_id}", headers={"X-API-Key": token})
    assert response.status_code == 200 and response.headers["Cache-Control"].startswith("private")
    document = closed.get("/api/v1/openapi.json").get_json()
    assert document["paths"]["/api/v1/artworks/{artwork_id}"]["get"]["security"] == [{"ApiKey": []}]


def test_cors_reads_from_anywhere(client, some_id):
    response = client.get(f"/api/v1/artworks/{some_id}/similar", headers={"Origin": "https://anyone.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]
    preflight = client.options(
        "/api/v1/similar",
        headers={
            "Origin": "https://anyone.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]


def test_cors_writes_only_from_the_allow_list(client, service):
    token = {"X-API-Key": create_key(service.home, "cors")}
    asked = {"Access-Control-Request-Method": "POST"}
    refused = client.options("/api/v1/artworks", headers={"Origin": "https://evil.example", **asked})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    allowed = client.options("/api/v1/artworks", headers={"Origin": GALLERY, **asked})
    assert allowed.status_code == 204 and allowed.headers["Access-Control-Allow-Origin"] == GALLERY
    assert "Origin" in allowed.headers["Vary"] and "X-API-Key" in allowed.headers["Access-Control-Allow-Headers"]
    evil = client.post(
        "/api/v1/artworks", json=new_artwork("sec-2"), headers={"Origin": "https://evil.example", **token}
    )
    assert evil.status_code == 403 and service.store.get("sec-2") is None
    good = client.post("/api/v1/artworks", json=new_artwork("sec-2"), headers={"Origin": GALLERY, **token})
    assert good.status_code == 201 and good.headers["Access-Control-Allow-Origin"] == GALLERY
    assert client.options("/api/v1/nowhere", headers={"Origin": GALLERY, **asked}).status_code == 404


def test_token_bucket_refills_over_time():
    now = [0.0]
    buckets = TokenBuckets(Rate(2, 10.0), clock=lambda: now[0])
    assert [buckets.take("a").allowed for _ in range(3)] == [True, True, False]
    assert buckets.take("b").allowed  # clients do not share buckets
    assert buckets.take("a").retry_after == 5
    now[0] = 5.0
    assert buckets.take("a").allowed and not buckets.take("a").allowed
    small = TokenBuckets(Rate(1, 60.0), max_clients=2, clock=lambda: now[0])
    for client in ("a", "b", "c"):
        small.take(client)
    assert small.take("a").allowed  # forgotten, so full again


def test_rate_limits_per_ip_and_per_key(service, some_id):
    client = make_client(service, RATE_LIMIT="3/minute", KEY_RATE_LIMIT="5/minute")
    statuses = [client.get(f"/api/v1/artworks/{some_id}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get(f"/api/v1/artworks/{some_id}")
    assert int(limited.headers["Retry-After"]) >= 1 and limited.get_json()["type"].endswith("rate-limited")
    assert limited.headers["RateLimit-Limit"] == "3"
    assert client.get("/healthz").status_code == 200  # health checks are never limited
    token = {"X-API-Key": create_key(service.home, "limits")}
    keyed = [client.get(f"/api/v1/artworks/{some_id}", headers=token).status_code for _ in range(6)]
    assert keyed == [200] * 5 + [429]


def test_forwarded_clients_are_told_apart_behind_a_trusted_proxy(service, some_id):
    client = make_client(service, RATE_LIMIT="1/minute", TRUSTED_PROXIES=1)
    for address in ("10.0.0.1", "10.0.0.2"):
        assert client.get(f"/api/v1/artworks/{some_id}", headers={"X-Forwarded-For": address}).status_code == 200
    assert client.get(f"/api/v1/artworks/{some_id}", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 429


def test_security_headers_everywhere(client, some_id):
    for response in (
        client.get(f"/api/v1/artworks/{some_id}"),
        client.get("/api/v1/artworks/nope"),
        client.get("/docs"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert client.get(f"/api/v1/artworks/{some_id}").headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_frameable_pages_may_be_framed(service):
    app = create_app({"LOG_REQUESTS": False}, service=service)
    embed = Blueprint("embed_test", __name__)

    @embed.get("/embed-test")
    @frameable
    def page():
        return "<!doctype html><p>hello</p>"

    app.register_blueprint(embed)
    response = app.test_client().get("/embed-test")
    assert "X-Frame-Options" not in response.headers
    assert "frame-ancestors *" in response.headers["Content-Security-Policy"]


def test_request_ids_are_echoed_and_logged(service, some_id, capsys):
    client = make_client(service, LOG_REQUESTS=True)
    given = client.get(f"/api/v1/artworks/{some_id}", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get(f"/api/v1/artworks/{some_id}", headers={"X-Request-ID": "not an id; <script>"})
    assert made.headers["X-Request-ID"] != "not an id; <script>" and len(made.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    logged = next(line for line in lines if line.get("request_id") == "abc-123")
    assert logged["status"] == 200 and logged["method"] == "GET" and logged["path"] == f"/api/v1/artworks/{some_id}"
    assert logged["ms"] >= 0 and logged["msg"] == "request"
