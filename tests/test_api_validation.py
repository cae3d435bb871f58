"""Bad input gets a 4xx problem document with a useful message, never a 500 or a traceback."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from flask import Blueprint

from api import create_app
from api.config import ConfigError, Rate, load_settings, parse_rate
from api.schemas import FIELD_SPECS
from api.testing import NO_LIMITS, copy_home
from critic.keys import create_key
from critic.records import Artwork
from critic.service import Service

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    return Service.load(copy_home(built_home, tmp_path_factory.mktemp("validation") / "home"), log=lambda _: None)


def make_app(service: Service, **config):
    settings = {**NO_LIMITS, "LOG_REQUESTS": False, **config}
    return create_app(settings, service=service)


@pytest.fixture(scope="module")
def client(service):
    return make_app(service).test_client()


@pytest.fixture(scope="module")
def key(service):
    return {"X-API-Key": create_key(service.home, "validation")}


@pytest.fixture(scope="module")
def some_id(service):
    return service.store.ids()[0]


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_the_schemas_cover_every_record_field():
    assert set(FIELD_SPECS) == {f.name for f in fields(Artwork)} - {"id"}


def test_unknown_and_mistyped_body_fields(client, key):
    body = problem(client.post("/api/v1/similar", json={"text": "a ship", "colour": "red"}), 400)
    assert body["field"] == "colour" and "unknown field" in body["detail"]
    body = problem(client.post("/api/v1/similar", json={"text": "a ship", "k": "10"}), 400)
    assert body["field"] == "k"
    body = problem(client.post("/api/v1/similar", json={"like": "37"}), 400)
    assert body["field"].startswith("like")
    body = problem(client.post("/api/v1/artworks", json={"id": "a/b"}, headers=key), 400)
    assert body["field"] == "id"
    body = problem(
        client.post("/api/v1/artworks", json={"id": "ok-1", "year_start": 1900, "year_end": 1800}, headers=key), 400
    )
    assert "year_start" in body["detail"]
    body = problem(client.post("/api/v1/artworks", json={"id": "ok-2", "url": "javascript:alert(1)"}, headers=key), 400)
    assert body["field"] == "url"


def test_query_strings_are_validated(client, some_id):
    url = f"/api/v1/artworks/{some_id}/similar"
    assert problem(client.get(url + "?k=ten"), 400)["field"] == "k"
    assert problem(client.get(url + "?k=0"), 400)["field"] == "k"
    assert problem(client.get(url + "?k=101"), 400)["field"] == "k"
    assert problem(client.get(url + "?diversity=nan"), 400)["field"] == "diversity"
    assert problem(client.get(url + "?k=2&k=3"), 400)["field"] == "k"
    body = problem(client.get(url + "?colour=red"), 400)
    assert body["field"] == "colour" and "unknown parameter" in body["detail"]
    assert problem(client.get(url + "?offset=990&k=20"), 400)["type"].endswith("invalid-query")


def test_bad_filters(client, some_id):
    body = problem(client.get(f"/api/v1/artworks/{some_id}/similar?where=colour=red"), 400)
    assert "unknown filter field 'colour'" in body["detail"] and body["type"].endswith("invalid-filter")
    problem(client.get(f"/api/v1/artworks/{some_id}/similar?year=1500..1400"), 400)
    problem(client.get("/api/v1/artworks?where=nonsense"), 400)
    problem(client.post("/api/v1/similar", json={"text": "a ship", "filters": {"colour": "red"}}), 400)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"text": "a ship",', "not valid JSON"),
        (b'{"text": "caf\xe9"}', "not valid UTF-8"),
        (b'{"text": "\\ud800"}', "not valid JSON"),
        (b'{"text": "a ship", "k": NaN}', "not valid JSON"),
        (b'["a ship"]', "must be a JSON object, not an array"),
        (b"null", "must be a JSON object, not null"),
        (b"[" * 100_000, "nested too deeply"),
        (b"", "not valid JSON"),
    ],
)
def test_malformed_bodies(client, data, fragment):
    body = problem(client.post("/api/v1/similar", data=data, content_type="application/json"), 400)
    assert fragment in body["detail"] and body["field"] == "body"


def test_body_needs_json_content_type(client):
    response = client.post("/api/v1/similar", data="text=ship", content_type="application/x-www-form-urlencoded")
    assert "application/json" in problem(response, 415)["detail"]


def test_oversize_body_is_413(service):
    client = make_app(service, MAX_BODY_BYTES=1000).test_client()
    body = problem(client.post("/api/v1/similar", json={"text": "a ship " * 500}), 413)
    assert "1000 bytes" in body["detail"]


def test_query_sources(client, some_id):
    assert "exactly one" in problem(client.post("/api/v1/similar", json={"k": 3}), 400)["detail"]
    assert "exactly one" in problem(client.post("/api/v1/similar", json={"id": some_id, "text": "a"}), 400)["detail"]
    problem(client.post("/api/v1/similar", json={"text": "   "}), 400)
    problem(client.post("/api/v1/critiques", json={"id": some_id, "text": "a vase"}), 400)
    problem(client.post("/api/v1/critiques", json={"id": some_id, "tone": "rude"}), 400)
    problem(client.post("/api/v1/descriptions", json={"text": "!!! ???"}), 400)


def test_unknown_ids_are_404(client, key):
    for response in (
        client.get("/api/v1/artworks/no-such-id"),
        client.get("/api/v1/artworks/no-such-id/similar"),
        client.get("/api/v1/artworks/no-such-id/critique"),
        client.post("/api/v1/similar", json={"like": ["no-such-id"]}),
        client.post("/api/v1/critiques", json={"id": "no-such-id"}),
        client.patch("/api/v1/artworks/no-such-id", json={"title": "x"}, headers=key),
        client.delete("/api/v1/artworks/no-such-id", headers=key),
    ):
        assert "no-such-id" in problem(response, 404)["detail"]


def test_unknown_routes_and_methods(client):
    problem(client.get("/api/v1/nothing-here"), 404)
    response = client.put("/api/v1/similar", json={})
    problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_an_unexpected_error_is_a_bare_500(service, capsys):
    app = make_app(service, LOG_REQUESTS=True)
    broken = Blueprint("broken", __name__)

    @broken.get("/broken")
    def fail():
        raise RuntimeError("secret internal detail")

    app.register_blueprint(broken)
    response = app.test_client().get("/broken", headers={"X-Request-ID": "req-42"})
    body = problem(response, 500)
    assert "secret" not in response.get_data(as_text=True) and body["request_id"] == "req-42"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    failure = next(line for line in logged if line["level"] == "error")
    assert "secret internal detail" in failure["error"] and "req-42" in failure["msg"]
    assert any(line.get("status") == 500 and line.get("request_id") == "req-42" for line in logged)


def test_settings_from_defaults_environment_and_overrides():
    environ = {
        "CRITIC_READS_NEED_KEY": "yes",
        "CRITIC_MAX_BODY_BYTES": "2048",
        "CRITIC_CORS_ORIGINS": "https://a.org, https://b.org",
    }
    settings = load_settings({"MAX_BODY_BYTES": 4096}, environ=environ)
    assert settings["READS_NEED_KEY"] is True
    assert settings["MAX_BODY_BYTES"] == 4096  # the override wins over the environment
    assert settings["CORS_ORIGINS"] == ["https://a.org", "https://b.org"]
    assert settings["RATE_LIMIT"] == "300/minute"  # the default
    assert parse_rate("10/second") == Rate(10, 1.0) and parse_rate("off") is None
    for bad in ({"CRITIC_MAX_BODY_BYTES": "lots"}, {"CRITIC_RATE_LIMIT": "fast"}, {"CRITIC_READS_NEED_KEY": "maybe"}):
        with pytest.raises(ConfigError):
            load_settings(environ=bad)
    with pytest.raises(ConfigError, match="CORS origin"):
        load_settings({"CORS_ORIGINS": ["https://a.org/path"]}, environ={})


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_deep_metadata_is_refused_with_400(client, key, some_id):
    for depth in (9, 500, 940):  # 500-940 levels once reached dataclasses.asdict and a RecursionError
        body = problem(client.post("/api/v1/artworks", json={"id": f"deep-{depth}", "metadata": _nested(depth)},
                                   headers=key), 400)
        assert "nested more than 8 levels" in body["detail"] and body["field"] == "metadata"
        problem(client.patch(f"/api/v1/artworks/{some_id}", json={"metadata": {"x": [_nested(depth)]}}, headers=key),
                400)
    created = client.post("/api/v1/artworks", json={"id": "deep-8", "metadata": _nested(8)}, headers=key)
    assert created.status_code == 201


@pytest.mark.parametrize("url", ['https://x.example/"onload="alert(1)', "https://x.example/a b", "https://x.example/<p>",
                                 "https://x.example/\ta"])
def test_urls_with_quotes_brackets_or_spaces_are_refused(client, key, url):
    refused = client.post("/api/v1/artworks", json={"id": "url-1", "url": url}, headers=key)
    assert problem(refused, 400)["field"] == "url"


def test_costly_filters_get_400_naming_the_limit_without_being_run(client, some_id):
    alternatives = "|".join(f"qz{n}" for n in range(3000))
    body = problem(client.post("/api/v1/similar", json={"text": "a bronze horse",
                                                          "filters": {f"description~{alternatives}": "x"}}), 400)
    assert "4096" in body["detail"]
    body = problem(client.get("/api/v1/artworks", query_string={"where": "title~" + "|".join("abcdefghij" * 7)}), 400)
    assert "at most 64 per filter" in body["detail"]
    body = problem(client.get(f"/api/v1/artworks/{some_id}/similar", query_string={"where": f"metadata.{'k' * 65}=x"}),
                   400)
    assert "64 characters" in body["detail"]
    unknown = client.get(f"/api/v1/artworks/{some_id}/similar", query_string={"where": "metadata.nobody_has_this=x"})
    assert unknown.status_code == 200 and unknown.get_json()["results"] == []
