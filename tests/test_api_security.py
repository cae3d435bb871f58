"""API keys, CORS, rate limits, security headers and request ids."""

from __future__ import annotations

import json
import sqlite3
import tempfile

import pytest
from flask import Blueprint

from api import create_app
from api.config import RATE_SETTINGS, Rate
from api.ratelimit import Charge, GenerationSlots, RateLimiter, client_address
from api.security import frameable
from api.testing import copy_home
from critic.home import Home
from critic.keys import KeyNameError, create_key, digest, key_store, list_keys, revoke_key
from critic.service import Service

GALLERY = "https://gallery.example.org"


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    return Service.load(copy_home(built_home, tmp_path_factory.mktemp("security") / "home"), log=lambda _: None)


LIMITS_OFF = {name: "off" for name in RATE_SETTINGS}


def make_client(service: Service, **config):
    # Each client its own counters: clients of one home would otherwise share them, as workers do.
    settings = {**LIMITS_OFF, "LOG_REQUESTS": False, "RUN_DIR": tempfile.mkdtemp(prefix="critic-run-"), **config}
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
    stored = Home(tmp_path).keys_path.read_bytes()
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


def test_token_buckets_refill_over_time_and_spend_all_or_nothing(tmp_path):
    now = [0.0]
    limits = RateLimiter(tmp_path / "limits.sqlite", clock=lambda: now[0])
    two = Rate(2, 10.0)
    assert [limits.take([Charge("a", two)]).allowed for _ in range(3)] == [True, True, False]
    assert limits.take([Charge("b", two)]).allowed  # clients do not share buckets
    assert limits.take([Charge("a", two)]).retry_after == 5
    now[0] = 5.0
    assert limits.take([Charge("a", two)]).allowed and not limits.take([Charge("a", two)]).allowed
    # A request spending from two buckets takes from neither when one is empty.
    refused = limits.take([Charge("c", Rate(5, 10.0)), Charge("text:c", Rate(1, 10.0))])
    assert refused.allowed
    refused = limits.take([Charge("c", Rate(5, 10.0)), Charge("text:c", Rate(1, 10.0))])
    assert not refused.allowed and refused.name == "text:c" and refused.retry_after == 10
    assert limits.take([Charge("c", Rate(5, 10.0))]).remaining == 3  # 5 - 1 - 1: the refusal spent nothing
    # Another process (here: another connection) sees the same counters.
    other = RateLimiter(tmp_path / "limits.sqlite", clock=lambda: now[0])
    assert not other.take([Charge("a", two)]).allowed


def test_ipv6_clients_share_a_bucket_per_64():
    assert client_address("2001:db8:0:1::1") == client_address("2001:db8:0:1:ffff::2") == "2001:db8:0:1::/64"
    assert client_address("2001:db8:0:2::1") != client_address("2001:db8:0:1::1")
    assert client_address("::ffff:192.0.2.7") == client_address("192.0.2.7") == "192.0.2.7"


def test_generation_slots_are_shared_and_freed(tmp_path):
    slots, again = GenerationSlots(tmp_path, 2), GenerationSlots(tmp_path, 2)  # as two workers see them
    held = [slots.acquire(), again.acquire()]
    assert None not in held and slots.acquire() is None and again.acquire() is None
    slots.release(held[0])
    assert again.acquire() is not None


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


# ------------------------------------------------------------------ scopes, costs, embed pages, links


def test_a_read_key_reads_but_cannot_write(service, some_id):
    client = make_client(service)
    reader = {"X-API-Key": create_key(service.home, "read-only", scope="read")}
    assert client.get(f"/api/v1/artworks/{some_id}", headers=reader).status_code == 200
    for method, path, body in (
        ("POST", "/api/v1/artworks", new_artwork("scope-1")),
        ("PATCH", f"/api/v1/artworks/{some_id}", {"title": "Renamed"}),
        ("DELETE", f"/api/v1/artworks/{some_id}", None),
    ):
        refused = client.open(path, method=method, json=body, headers=reader)
        assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
        assert refused.get_json()["type"].endswith("read-only-key")
    assert service.store.get("scope-1") is None and service.store.get(some_id).title != "Renamed"
    with pytest.raises(KeyNameError, match="scope"):
        create_key(service.home, "odd", scope="admin")


def test_keys_cli_creates_read_keys_and_old_keys_stay_write_keys(tmp_path, capsys):
    from critic.cli import main

    assert main(["keys", "create", "widget", "--scope", "read", "--home", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["keys", "create", "editor", "--home", str(tmp_path)]) == 0
    assert main(["keys", "list", "--home", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert "widget\tread\t" in listed and "editor\twrite\t" in listed
    assert key_store(tmp_path).verify(token).scope == "read"
    # A keys database from before scopes: its keys could write, and still can.
    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(Home(old).keys_path) as db:
        db.execute("CREATE TABLE api_keys (name TEXT PRIMARY KEY, digest TEXT, created_at TEXT, revoked_at TEXT)")
        db.execute("INSERT INTO api_keys VALUES ('legacy', ?, '2026-01-01', NULL)", (digest("critic_x"),))
    assert key_store(old).verify("critic_x").can_write


def test_generation_and_text_queries_spend_their_own_smaller_budgets(service, some_id):
    client = make_client(service, RATE_LIMIT="100/hour", GENERATION_RATE_LIMIT="2/hour",
                         TEXT_QUERY_RATE_LIMIT="3/hour")
    critiques = [client.get(f"/api/v1/artworks/{some_id}/critique?tone=label&seed={n}") for n in range(3)]
    assert [r.status_code for r in critiques] == [200, 200, 429]
    assert "generation" in critiques[-1].get_json()["detail"] and int(critiques[-1].headers["Retry-After"]) >= 1
    assert client.post("/api/v1/descriptions", json={"id": some_id}).status_code == 429  # the same budget
    texts = [client.post("/api/v1/similar", json={"text": f"a bronze horse {n}"}).status_code for n in range(4)]
    assert texts == [200, 200, 200, 429]
    assert client.get("/api/v1/artworks?q=a+bronze+horse").status_code == 429
    # A substring filter scans a whole field: it costs a text query too, wherever it is asked.
    assert client.get("/api/v1/artworks", query_string={"where": "title~vase"}).status_code == 429
    assert client.get(f"/api/v1/artworks/{some_id}/similar", query_string={"where": "title~vase"}).status_code == 429
    assert client.post("/api/v1/similar", json={"id": some_id, "filters": {"title~": "vase"}}).status_code == 429
    assert client.get("/api/v1/artworks", query_string={"where": "title=vase"}).status_code == 200
    # Cheap reads keep flowing: by id, and a listing without text.
    assert client.post("/api/v1/similar", json={"id": some_id}).status_code == 200
    assert client.get(f"/api/v1/artworks/{some_id}/similar").status_code == 200
    assert client.get("/api/v1/artworks?limit=2").status_code == 200
    # A request that does not parse is refused as bad, and costs no text query.
    assert client.post("/api/v1/similar", json={"text": "x", "k": 0}).status_code == 400


def test_generations_beyond_the_server_wide_cap_get_503_at_once(service, some_id):
    run_dir = tempfile.mkdtemp(prefix="critic-run-")
    client = make_client(service, RUN_DIR=run_dir, MAX_GENERATIONS=2)
    elsewhere = GenerationSlots(run_dir, 2)  # as another worker running two critiques
    held = [elsewhere.acquire(), elsewhere.acquire()]
    busy = client.get(f"/api/v1/artworks/{some_id}/critique?tone=label")
    assert busy.status_code == 503 and busy.get_json()["type"].endswith("busy")
    assert busy.headers["Retry-After"] == "2"
    assert client.get(f"/api/v1/artworks/{some_id}/similar").status_code == 200  # reads are not held up
    elsewhere.release(held.pop())
    assert client.get(f"/api/v1/artworks/{some_id}/critique?tone=label").status_code == 200
    assert elsewhere.acquire() is not None  # the request gave its slot back


def test_responses_say_when_they_vary_by_origin(client, service, some_id):
    plain = client.get(f"/api/v1/artworks/{some_id}")
    with_origin = client.get(f"/api/v1/artworks/{some_id}", headers={"Origin": "https://anyone.example"})
    # A read is the same for every origin and for none, so a shared cache may serve it to all.
    assert plain.headers["Access-Control-Allow-Origin"] == with_origin.headers["Access-Control-Allow-Origin"] == "*"
    token = {"X-API-Key": create_key(service.home, "vary")}
    for origin in ({}, {"Origin": GALLERY}, {"Origin": "https://evil.example"}):
        write = client.delete("/api/v1/artworks/no-such-id", headers={**token, **origin})
        assert "Origin" in write.headers.get("Vary", ""), origin


def test_links_use_the_public_url_and_never_a_forwarded_host(service, some_id):
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-For": "10.9.9.9"}
    behind_proxy = make_client(service, TRUSTED_PROXIES=1)
    page = behind_proxy.get(f"/embed/similar/{some_id}", headers=forged).get_data(as_text=True)
    oembed = behind_proxy.get("/oembed", query_string={"url": f"http://localhost/embed/similar/{some_id}"},
                              headers=forged).get_json()
    assert "evil.example" not in page and "evil.example" not in oembed["html"]
    assert 'href="http://localhost/oembed?' in page
    public = make_client(service, TRUSTED_PROXIES=1, PUBLIC_URL="https://art.example.org/")
    page = public.get(f"/embed/similar/{some_id}", headers=forged).get_data(as_text=True)
    url = f"https://art.example.org/embed/similar/{some_id}"
    oembed = public.get("/oembed", query_string={"url": url}, headers=forged).get_json()
    assert 'href="https://art.example.org/oembed?' in page and "evil.example" not in page
    assert oembed["html"].startswith('<iframe src="https://art.example.org/embed/similar/')
    assert oembed["provider_url"] == "https://art.example.org/"
