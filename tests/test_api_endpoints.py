"""Every endpoint through the Flask test client on a real build: shapes, filters, paging, writes, caching."""

from __future__ import annotations

import time

import pytest

from api import create_app
from api.problems import ApiProblem
from api.runtime import ServiceSlot
from api.schemas import Artwork as ArtworkSchema
from api.schemas import Critique, NewArtwork, Recommendations
from api.testing import NO_LIMITS, copy_home
from critic.home import Home
from critic.keys import create_key
from critic.records import fold_case
from critic.service import Service
from critic.store import ArtworkStore


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    return Service.load(copy_home(built_home, tmp_path_factory.mktemp("endpoints") / "home"), log=lambda _: None)


@pytest.fixture(scope="module")
def client(service):
    config = {**NO_LIMITS, "LOG_REQUESTS": False}
    return create_app(config, service=service).test_client()


@pytest.fixture(scope="module")
def key(service):
    return {"X-API-Key": create_key(service.home, "endpoints")}


@pytest.fixture(scope="module")
def described(service):
    """An artwork with a description, a culture and neighbours of the same culture."""
    records = [r for r in service.store.all() if r.description and r.culture]
    cultures = [r.culture for r in records]
    return max(records, key=lambda r: cultures.count(r.culture))


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def test_listing_pages_without_gaps_or_overlaps(client, service):
    seen, offset, total = [], 0, None
    while offset is not None:
        page = ok(client.get(f"/api/v1/artworks?limit=40&offset={offset}"))
        total = page["total"]
        seen += [r["id"] for r in page["results"]]
        offset = page["next_offset"]
    assert seen == service.store.ids() and total == len(seen)


def test_listing_filters(client, described):
    page = ok(client.get(f"/api/v1/artworks?culture={described.culture}&limit=100"))
    assert page["total"] >= 2 and described.id in [r["id"] for r in page["results"]]
    assert all(fold_case(r["culture"]) == fold_case(described.culture) for r in page["results"])
    assert page["query"]["where"] == [f"culture={described.culture}"]


def test_text_search_ranks_with_scores(client):
    page = ok(client.get("/api/v1/artworks?q=gold+coin+with+a+portrait&limit=5"))
    scores = [r["score"] for r in page["results"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and page["total"] is None
    ArtworkSchema.model_validate({k: v for k, v in page["results"][0].items() if k != "score"})


def test_one_artwork_with_etag(client, service, described):
    response = client.get(f"/api/v1/artworks/{described.id}")
    assert ok(response) == service.store.get(described.id).to_dict()
    assert response.headers["Cache-Control"] == "public, max-age=60" and response.headers["ETag"]
    again = client.get(f"/api/v1/artworks/{described.id}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    other = client.get(f"/api/v1/artworks/{described.id}", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_similar_matches_the_cli_shape_and_honours_filters(client, service, described):
    body = ok(client.get(f"/api/v1/artworks/{described.id}/similar?k=5"))
    Recommendations.model_validate(body)
    assert body == service.recommender.similar(described.id, k=5).to_json()
    filtered = ok(client.get(f"/api/v1/artworks/{described.id}/similar?k=3&culture={described.culture}"))
    assert filtered["results"] and all(
        fold_case(service.store.get(r["id"]).culture) == fold_case(described.culture) for r in filtered["results"]
    )
    first = body["results"][0]["id"]
    without = ok(client.get(f"/api/v1/artworks/{described.id}/similar?k=5&exclude={first}"))
    assert first not in [r["id"] for r in without["results"]]
    second_page = ok(client.get(f"/api/v1/artworks/{described.id}/similar?k=5&offset=5"))
    assert not {r["id"] for r in body["results"]} & {r["id"] for r in second_page["results"]}
    assert body["next_offset"] == 5
    others = ok(client.get(f"/api/v1/artworks/{described.id}/similar?k=5&exclude_same_creator=true&max_per_creator=1"))
    assert others == service.recommender.similar(
        described.id, k=5, exclude_same_creator=True, max_per_creator=1
    ).to_json()
    assert not any(set(described.creators) & set(r["creators"]) for r in others["results"])
    assert client.get(f"/api/v1/artworks/{described.id}/similar?max_per_creator=0").status_code == 400


def test_post_similar_by_text_and_by_examples(client, described):
    by_text = ok(client.post("/api/v1/similar", json={"text": "a bronze statuette of a horse", "k": 4}))
    assert len(by_text["results"]) == 4 and by_text["query"]["text"] == "a bronze statuette of a horse"
    liked = ok(client.post("/api/v1/similar", json={"like": [described.id], "k": 4, "diversity": 0.5}))
    assert described.id not in [r["id"] for r in liked["results"]]
    weighted = ok(
        client.post(
            "/api/v1/similar",
            json={"like": {described.id: 2.0}, "unlike": [liked["results"][0]["id"]], "k": 4},
        )
    )
    assert liked["results"][0]["id"] not in [r["id"] for r in weighted["results"]]
    filtered = ok(
        client.post("/api/v1/similar", json={"id": described.id, "filters": {"culture": [described.culture]}})
    )
    assert filtered["query"]["where"] == [f"culture={fold_case(described.culture)}"]
    assert client.post("/api/v1/similar", json={"text": "a horse"}).headers["Cache-Control"] == "no-store"


def test_add_change_and_remove_an_artwork(client, service, key):
    new = {
        "id": "api-test-1",
        "title": "Seascape with a lighthouse",
        "creators": ["Test Painter"],
        "description": "Waves break on rocks below a lighthouse while a ship passes in a storm.",
        "metadata": {"batch": "endpoints", "note": "to drop"},
    }
    created = client.post("/api/v1/artworks", json=new, headers=key)
    assert ok(created, 201)["title"] == new["title"]
    assert created.headers["Location"] == "/api/v1/artworks/api-test-1"
    # Committed: another connection to the database sees it; searchable: similar works at once.
    assert ArtworkStore(service.home.store_path).get("api-test-1").title == new["title"]
    assert ok(client.get("/api/v1/artworks/api-test-1/similar?k=3"))["results"]
    found = ok(client.post("/api/v1/similar", json={"like": ["api-test-1"], "k": 3, "where": ["metadata.batch=x"]}))
    assert found["results"] == []
    assert ok(client.post("/api/v1/artworks", json=new, headers=key), 409)["field"] == "id"

    etag = client.get("/api/v1/artworks/api-test-1").headers["ETag"]
    patch = {"title": "Lighthouse in a storm", "keywords": ["sea"], "metadata": {"note": None, "room": "12"}}
    changed = ok(client.patch("/api/v1/artworks/api-test-1", json=patch, headers=key))
    assert changed["title"] == "Lighthouse in a storm" and changed["creators"] == ["Test Painter"]
    assert changed["metadata"] == {"batch": "endpoints", "room": "12"} and changed["keywords"] == ["sea"]
    stale = client.patch("/api/v1/artworks/api-test-1", json={"title": "x"}, headers={**key, "If-Match": etag})
    assert ok(stale, 412)["status"] == 412
    reset = ok(client.patch("/api/v1/artworks/api-test-1", json={"creators": None}, headers=key))
    assert reset["creators"] == []
    assert ok(
        client.patch("/api/v1/artworks/api-test-1", json={"year_start": 1900, "year_end": 1800}, headers=key), 400
    )
    with_years = ok(client.patch("/api/v1/artworks/api-test-1", json={"year_end": 1800}, headers=key))
    assert ok(client.patch("/api/v1/artworks/api-test-1", json={"year_start": 1900}, headers=key), 400)
    assert with_years["year_end"] == 1800

    deleted = client.delete("/api/v1/artworks/api-test-1", headers=key)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get("/api/v1/artworks/api-test-1").status_code == 404
    assert client.get("/api/v1/artworks/api-test-1/similar").status_code == 404
    assert ArtworkStore(service.home.store_path).get("api-test-1") is None


def test_critiques_and_descriptions(client, described):
    label = client.get(f"/api/v1/artworks/{described.id}/critique?tone=label&seed=3")
    body = ok(label)
    Critique.model_validate(body)
    assert body["id"] == described.id and body["tone"] == "label" and len(body["text"].split()) <= 80
    assert (
        label.headers["ETag"] and ok(client.get(f"/api/v1/artworks/{described.id}/critique?tone=label&seed=3")) == body
    )
    full = ok(client.post("/api/v1/critiques", json={"id": described.id, "tone": "critique"}))
    assert [s["title"] for s in full["sections"]][:2] == ["What it is", "Description"]
    assert full["evidence"]["neighbours"] and described.id not in [n["id"] for n in full["evidence"]["neighbours"]]
    new = ok(
        client.post(
            "/api/v1/critiques",
            json={
                "text": "A bronze horse rearing on a marble base.",
                "metadata": {"title": "Rearing horse"},
                "tone": "label",
            },
        )
    )
    assert new["id"] == "new" and "Rearing horse" in new["text"]
    description = ok(client.post("/api/v1/descriptions", json={"id": described.id, "seed": 1}))
    assert description["id"] == described.id and description["text"] and description["evidence"]["drafter"]


def test_the_trained_writer_drafts_and_a_damaged_one_falls_back_to_editing_alone(built_home, tmp_path, described):
    from critic.writer.protocol import DEFAULT_DRAFTER
    from critic.writing import Writing

    service = Service.load(copy_home(built_home, tmp_path / "home"), log=lambda _: None)
    assert Writing(service).describe(described, seed=0).evidence()["drafter"] == DEFAULT_DRAFTER
    weights = service.home.writer_dir / "writer.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a torn save
    writing = Writing(service)
    draft = writing.describe(described, seed=0)
    assert draft.text and draft.evidence()["drafter"] == "edit"  # retrieve-and-edit without the decoder's ranking
    assert writing.critique(described, "label", seed=0).to_json()["text"]


def test_openapi_comes_from_the_validating_models(client):
    document = ok(client.get("/api/v1/openapi.json"))
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    assert schemas["NewArtwork"]["properties"]["id"] == NewArtwork.model_json_schema()["properties"]["id"]
    paths = document["paths"]
    expected = {
        ("get", "/api/v1/artworks"),
        ("post", "/api/v1/artworks"),
        ("get", "/api/v1/artworks/{artwork_id}"),
        ("patch", "/api/v1/artworks/{artwork_id}"),
        ("delete", "/api/v1/artworks/{artwork_id}"),
        ("get", "/api/v1/artworks/{artwork_id}/similar"),
        ("post", "/api/v1/similar"),
        ("get", "/api/v1/artworks/{artwork_id}/critique"),
        ("post", "/api/v1/critiques"),
        ("post", "/api/v1/descriptions"),
        ("get", "/api/v1/healthz"),
        ("get", "/api/v1/readyz"),
    }
    assert {(m, p) for p, item in paths.items() for m in item} == expected
    assert paths["/api/v1/artworks"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in paths["/api/v1/artworks"]["get"]
    parameters = {p["name"]: p for p in paths["/api/v1/artworks/{artwork_id}/similar"]["get"]["parameters"]}
    assert parameters["k"]["schema"]["maximum"] == 100 and parameters["culture"]["schema"]["type"] == "string"
    assert parameters["where"]["explode"] is True and parameters["artwork_id"]["in"] == "path"


def test_docs_page_is_served_from_the_project(client):
    page = client.get("/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("/static/docs/docs.js", "/static/docs/docs.css"):
        assert asset in html and client.get(asset).status_code == 200
    assert client.get("/api/v1/docs").status_code == 200


def test_health_and_readiness(client, service):
    assert ok(client.get("/healthz")) == ok(client.get("/api/v1/healthz")) == {"status": "ok"}
    assert ok(client.get("/api/v1/readyz")) == {"status": "ready", "artworks": service.store.count()}


def test_not_ready_while_the_build_cannot_load(tmp_path):
    app = create_app({"HOME": str(tmp_path / "empty"), "LOAD_IN_BACKGROUND": True, "LOG_REQUESTS": False})
    app.extensions["critic"].slot.wait(60)
    client = app.test_client()
    assert ok(client.get("/healthz")) == {"status": "ok"}
    assert ok(client.get("/readyz"), 503)["status"] == "failed"
    response = client.get("/api/v1/artworks")
    assert response.status_code == 503 and response.mimetype == "application/problem+json"


def test_a_request_waits_for_a_loading_service_then_gets_503(tmp_path):
    slot = ServiceSlot(Home(tmp_path), wait_s=0.2)  # never started: it stays loading
    started = time.monotonic()
    with pytest.raises(ApiProblem) as raised:
        slot.get()
    assert time.monotonic() - started >= 0.2 and slot.status == "loading"
    assert raised.value.status == 503 and raised.value.headers["Retry-After"] == "5"
