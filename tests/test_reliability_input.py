"""Reliability under bad input: 10,000 generated bad requests plus hand-written nasties get no 5xx, and the stored
collection (the SQLite database and the saved index) stays byte for byte as it was.

test_api_validation checks the message and status of each kind of refusal, test_api_schemathesis that every
response matches the OpenAPI document; this file checks volume and the invariant that refused input changes
nothing. Requests go through the Flask test client (the whole app: security, validation, error handlers) over
a private copy of the session build, so 10,000 of them take seconds.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from api.schemas import ArtworkPatch, NewArtwork, SimilarBody, SimilarParams
from api.testing import NO_LIMITS, copy_home
from critic.keys import create_key
from critic.service import Service

pytestmark = pytest.mark.slow

GENERATED = 10_000
PER_EXAMPLE = 40  # requests drawn per hypothesis example: 250 examples make the 10,000

NASTY = [
    "'; DROP TABLE artworks; --",
    "1' OR '1'='1",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.cookie)>",
    "javascript:alert(1)",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "../../../../etc/passwd",
    "%00%0d%0aSet-Cookie: x=1",
    "\u0000",
    "\u202egnp.exe",
    "🎨" * 40,
    "NaN",
    "-Infinity",
    "1e400",
    "",
    " ",
    "null",
    "A" * 3000,
]


def not_a_number(text: str) -> bool:
    try:
        float(text.replace("_", ""))
    except ValueError:
        return True
    return False


nasty_text = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
bad_int = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=101),
    st.sampled_from(["ten", "1.5", "NaN", "inf", "-1", "", "0x10", "1e3"]),
    nasty_text.filter(not_a_number),
)
# Names no endpoint knows (a random name that happened to be a real field could make a request valid).
KNOWN_NAMES = set(SimilarParams.model_fields) | set(SimilarBody.model_fields) | set(NewArtwork.model_fields)
unknown_name = nasty_text.filter(lambda s: s not in KNOWN_NAMES)
bad_fraction = st.one_of(
    st.floats(allow_nan=False).filter(lambda x: not 0 <= x <= 1).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1.0001", "-0.5", "x"]),
)


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


# Requests are drawn as templates: ID stands for an artwork of the collection and KEY for a valid API key, filled
# in when sent. Every strategy is built once, here (building them per draw costs hypothesis more than sending).
ID, KEY, READ_KEY = "ID-PLACEHOLDER", "KEY-PLACEHOLDER", "READER-PLACEHOLDER"
JSON_TYPE = {"Content-Type": "application/json"}
KEYED = {**JSON_TYPE, "X-API-Key": KEY}
WRONG_KEYS = st.sampled_from([{}, {"X-API-Key": ""}, {"X-API-Key": "critic_guess"}, {"X-API-Key": "' OR 1=1 --"}])
target_id = st.one_of(st.just(ID), nasty_text.filter(bool).map(lambda s: quote(s, safe="")))


def _get(path: str, params: dict) -> tuple:
    return "GET", f"{path}?{urlencode(params)}", None, {}


similar_by_id_bad_parameter = st.builds(
    lambda target, param: _get(f"/api/v1/artworks/{target}/similar", dict([param])),
    target_id,
    st.one_of(
        st.tuples(st.just("k"), bad_int),
        st.tuples(st.just("offset"), st.sampled_from(["-1", "-100", "x", "1e9"])),
        st.tuples(st.just("diversity"), bad_fraction),
        st.tuples(st.just("min_score"), st.sampled_from(["2", "-1.5", "nan", "x"])),
        st.tuples(unknown_name, nasty_text),
        st.tuples(st.just("where"), st.sampled_from(["colour=red", "year=1500..1400", "=", "a" * 600])),
    ),
)


def _similar_body(text: str, field: str, value: object) -> tuple:
    if field == "filters" and isinstance(value, dict):
        value = {f"no_such_field_{n}": v for n, v in enumerate(value.values())}
    return "POST", "/api/v1/similar", _json({"text": text, field: value}), JSON_TYPE


similar_bad_body = st.builds(
    lambda text, pair: _similar_body(text, *pair),
    nasty_text,
    st.one_of(
        st.tuples(st.just("k"), st.one_of(st.integers(max_value=0), st.integers(min_value=101), nasty_text)),
        st.tuples(st.just("diversity"), st.one_of(st.floats().filter(lambda x: not 0 <= x <= 1), nasty_text)),
        st.tuples(st.just("like"), st.one_of(nasty_text, st.integers(), st.lists(st.integers(), min_size=1))),
        st.tuples(st.just("filters"), st.one_of(nasty_text, st.dictionaries(nasty_text, nasty_text, min_size=1))),
        st.tuples(unknown_name, nasty_text),
        st.tuples(st.just("text"), st.one_of(st.integers(), st.lists(nasty_text), st.just("x" * 2001))),
    ),
)

not_an_object = st.builds(
    lambda endpoint, raw, content_type: (endpoint[1], endpoint[0], raw, {**endpoint[2], "Content-Type": content_type}),
    st.sampled_from(
        [
            ("/api/v1/similar", "POST", {}),
            ("/api/v1/critiques", "POST", {}),
            ("/api/v1/descriptions", "POST", {}),
            ("/api/v1/artworks", "POST", {"X-API-Key": KEY}),
            (f"/api/v1/artworks/{ID}", "PATCH", {"X-API-Key": KEY}),
        ]
    ),
    st.one_of(
        st.binary(max_size=200).filter(lambda b: b.strip()[:1] != b"{"),
        st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b"\xff\xfe{}", b'{"text": "\xc3\x28"}', b"{,}"]),
        st.one_of(nasty_text, st.integers(), st.lists(st.integers())).map(_json),
    ),
    st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
)


def _unkeyed_write(method: str, n: int, title: str, description: str, headers: dict) -> tuple:
    if method == "DELETE":
        return method, f"/api/v1/artworks/{ID}", None, headers
    if method == "PATCH":
        return method, f"/api/v1/artworks/{ID}", _json({"title": title}), {**JSON_TYPE, **headers}
    body = {"id": f"x{n}", "title": title, "description": description}
    return method, "/api/v1/artworks", _json(body), {**JSON_TYPE, **headers}


write_without_key = st.builds(
    _unkeyed_write, st.sampled_from(["POST", "PATCH", "DELETE"]), st.integers(0, 10**6), nasty_text, nasty_text,
    WRONG_KEYS,
)  # fmt: skip


def _keyed_bad_write(patch: bool, n: int, title: str, pair: tuple) -> tuple:
    field, value = pair
    if patch:  # a patch of an existing artwork (an id is no field of a patch)
        return "PATCH", f"/api/v1/artworks/{ID}", _json({field: value}), KEYED
    return "POST", "/api/v1/artworks", _json({"id": f"x{n}", "title": title, field: value}), KEYED


keyed_bad_write = st.builds(
    _keyed_bad_write,
    st.booleans(),
    st.integers(0, 10**6),
    nasty_text,
    st.one_of(
        st.tuples(st.just("id"), st.sampled_from(NASTY[:9] + ["", " x", "a/b", "a" * 129, "-x", "é"])),
        st.tuples(st.just("year_start"), st.one_of(st.integers(min_value=10_001), st.integers(max_value=-10_001))),
        st.tuples(st.just("url"), st.sampled_from(["javascript:alert(1)", "ftp://x", "data:text/html,<b>"])),
        st.tuples(st.just("title"), st.one_of(st.just("t" * 1001), st.integers(), st.lists(nasty_text, min_size=1))),
        st.tuples(st.just("keywords"), st.one_of(nasty_text, st.just(["k"] * 201))),
        st.tuples(unknown_name.filter(lambda s: s not in ArtworkPatch.model_fields), nasty_text),
    ),
)

conflicting_write = st.one_of(
    nasty_text.map(lambda title: ("POST", "/api/v1/artworks", _json({"id": ID, "title": title}), KEYED)),
    st.tuples(st.integers(-9000, 9000), st.integers(1, 999)).map(
        lambda y: ("PATCH", f"/api/v1/artworks/{ID}", _json({"year_start": y[0], "year_end": y[0] - y[1]}), KEYED)
    ),
)

bad_critique = st.one_of(
    st.one_of(
        nasty_text.filter(lambda t: t not in ("label", "critique", "scholarly")).map(lambda t: {"tone": t}),
        st.one_of(st.integers(max_value=-1), st.integers(min_value=2**31), nasty_text.filter(not_a_number)).map(
            lambda seed: {"seed": seed}
        ),
    ).map(lambda params: _get(f"/api/v1/artworks/{ID}/critique", params)),
    st.builds(
        lambda body, path: ("POST", path, _json(body), JSON_TYPE),
        st.sampled_from([{"id": ID, "tone": "rude"}, {"id": ID, "text": "a vase"}, {}, {"seed": -1, "id": ID}]),
        st.sampled_from(["/api/v1/critiques", "/api/v1/descriptions"]),
    ),
)

bad_listing = st.one_of(
    st.tuples(st.just("limit"), bad_int),
    st.tuples(st.just("offset"), st.sampled_from(["-1", "x", "1000001"])),
    st.tuples(st.just("q"), st.just("")),
    st.tuples(st.just("where"), st.sampled_from(["nonsense", "colour=red", "year=x..y", "=="])),
).map(lambda param: _get("/api/v1/artworks", dict([param])))

wrong_route = st.one_of(
    st.tuples(st.sampled_from(["GET", "PUT", "POST", "DELETE"]), nasty_text).map(
        lambda pair: (pair[0], "/api/v1/" + quote(pair[1], safe="/"), None, {})
    ),
    st.sampled_from(
        [
            ("PUT", "/api/v1/similar", None, {}),
            ("DELETE", "/api/v1/artworks", None, {}),
            ("GET", "/api/v1/similar", None, {}),
        ]
    ),
)

too_big = st.sampled_from(
    [
        ("POST", "/api/v1/similar", b'{"text": "' + b"a" * (128 * 1024) + b'"}', JSON_TYPE),
        ("POST", "/api/v1/artworks", b'{"id": "big", "title": "' + b"a" * (128 * 1024) + b'"}', KEYED),
    ]
)

def _alternatives(n: int) -> str:
    return "|".join(f"qz{i}" for i in range(n))


def _costly_body(field: str, n: int) -> tuple:
    body = {"text": "a horse", "filters": {f"{field}~{_alternatives(n)}": "x"}}
    return "POST", "/api/v1/similar", _json(body), JSON_TYPE


costly_filter = st.one_of(
    st.builds(_costly_body, st.sampled_from(["description", "title", "metadata.note"]), st.integers(65, 5000)),
    # Short enough for the parameter's 500 characters, too many alternatives for one filter.
    st.integers(65, 90).map(lambda n: _get("/api/v1/artworks", {"where": f"description~{_alternatives(n)}"})),
    st.builds(
        lambda name: _get(f"/api/v1/artworks/{ID}/similar", {"where": f"metadata.{name}=x"}),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=65, max_size=400),
    ),
    st.builds(lambda values: ("POST", "/api/v1/similar", _json({"id": ID, "where": values}), JSON_TYPE),
              st.lists(st.just("title~" + "|".join("abcdefgh" * 7)), min_size=3, max_size=20)),
)  # fmt: skip


def _deep(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"a": [value]} if depth % 2 else {"a": value}
    return value


deep_metadata = st.builds(
    lambda patch, n, depth: (
        ("PATCH", f"/api/v1/artworks/{ID}", _json({"metadata": _deep(depth)}), KEYED)
        if patch
        else ("POST", "/api/v1/artworks", _json({"id": f"deep{n}", "metadata": _deep(depth)}), KEYED)
    ),
    st.booleans(), st.integers(0, 10**6), st.integers(8, 400),
)  # fmt: skip

unsafe_url = st.builds(
    lambda n, field, bad: ("POST", "/api/v1/artworks", _json({"id": f"u{n}", field: f"https://x.test/{bad}"}), KEYED),
    st.integers(0, 10**6), st.sampled_from(["url", "image_url"]),
    st.sampled_from(['"onmouseover="alert(1)', "<script>", "a b", "a\tb", "a\nb", ">"]),
)  # fmt: skip

READ_KEYED = {**JSON_TYPE, "X-API-Key": READ_KEY}
read_key_write = st.one_of(
    st.integers(0, 10**6).map(lambda n: ("POST", "/api/v1/artworks", _json({"id": f"r{n}", "title": "x"}), READ_KEYED)),
    nasty_text.map(lambda title: ("PATCH", f"/api/v1/artworks/{ID}", _json({"title": title}), READ_KEYED)),
    st.just(("DELETE", f"/api/v1/artworks/{ID}", None, {"X-API-Key": READ_KEY})),
    st.just(("GET", f"/embed/similar/{ID}?key={KEY}", None, {})),  # a write key may not travel in a URL
)  # fmt: skip

bad_request = st.tuples(
    st.one_of(
        similar_by_id_bad_parameter, similar_bad_body, not_an_object, write_without_key, keyed_bad_write,
        conflicting_write, bad_critique, bad_listing, wrong_route, too_big, costly_filter, deep_metadata, unsafe_url,
        read_key_write,
    ),
    st.integers(0, 2**16),
)  # fmt: skip


def fill_in(
    template: tuple, n: int, ids: list[str], key: str, read_key: str
) -> tuple[str, str, bytes | None, dict[str, str]]:
    """The request a drawn template stands for: ID becomes the n-th artwork (mod the count), KEY the write key and
    READ_KEY the read key."""
    method, path, body, headers = template
    artwork_id = ids[n % len(ids)]
    path = path.replace(ID, quote(artwork_id, safe="")).replace(KEY, key)
    if body is not None:
        body = body.replace(ID.encode(), artwork_id.encode())
    keys = {name: value.replace(KEY, key).replace(READ_KEY, read_key) for name, value in headers.items()}
    return method, path, body, keys


def collection_fingerprint(service: Service) -> dict[str, str]:
    """sha256 of the database file, of its SQL dump, and of every saved index file."""
    path = service.home.store_path
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file; a no-op once done
        dump = "\n".join(db.iterdump())
    prints = {
        "database file": hashlib.sha256(path.read_bytes()).hexdigest(),
        "database dump": hashlib.sha256(dump.encode()).hexdigest(),
    }
    wal = path.with_name(path.name + "-wal")
    prints["wal"] = hashlib.sha256(wal.read_bytes()).hexdigest() if wal.exists() else "none"
    for file in sorted(service.home.index_dir.iterdir()):
        prints[f"index/{file.name}"] = hashlib.sha256(file.read_bytes()).hexdigest()
    return prints


@pytest.fixture(scope="module")
def service(built_home, tmp_path_factory):
    return Service.load(copy_home(built_home, tmp_path_factory.mktemp("bad-input") / "home"), log=lambda _: None)


@pytest.fixture(scope="module")
def client(service):
    app = create_app({**NO_LIMITS, "LOG_REQUESTS": False}, service=service)
    return app.test_client()


@pytest.fixture(scope="module")
def key(service):
    return create_key(service.home, "reliability")


@pytest.fixture(scope="module")
def read_key(service):
    return create_key(service.home, "reliability-reader", scope="read")


def send(client, method: str, path: str, body: bytes | None, headers: dict[str, str]):
    return client.open(path, method=method, data=body, headers=headers)


def test_ten_thousand_generated_bad_requests_are_refused_and_change_nothing(client, service, key, read_key):
    ids = service.store.ids()
    probe = ids[3]
    before_similar = client.get(f"/api/v1/artworks/{probe}/similar?k=10").get_json()["results"]
    before = collection_fingerprint(service)
    statuses: dict[int, int] = {}
    failures: list[str] = []

    @given(st.lists(bad_request, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    @settings(
        max_examples=GENERATED // PER_EXAMPLE,
        deadline=None,
        database=None,
        derandomize=True,  # the same 10,000 requests on every run: a failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    def fire(requests):
        for template, n in requests:
            method, path, body, headers = fill_in(template, n, ids, key, read_key)
            response = send(client, method, path, body, headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if not 400 <= response.status_code < 500 or "Traceback" in response.get_data(as_text=True):
                failures.append(f"{method} {path[:120]} {body[:120] if body else b''!r} -> {response.status_code}")

    fire()
    assert sum(statuses.values()) >= GENERATED
    assert not failures, f"{len(failures)} bad requests not refused with a 4xx, e.g.:\n" + "\n".join(failures[:10])
    assert collection_fingerprint(service) == before
    assert client.get(f"/api/v1/artworks/{probe}/similar?k=10").get_json()["results"] == before_similar
    assert service.store.count() == len(ids)


def test_hand_written_nasties_get_no_5xx_and_change_nothing(client, service, key):
    some_id = service.store.ids()[0]
    keyed = {"X-API-Key": key, "Content-Type": "application/json"}
    plain = {"Content-Type": "application/json"}
    before = collection_fingerprint(service)
    deep_list = b"[" * 50_000 + b"]" * 50_000  # 100 kB: under the body limit, over any nesting limit
    deep_object = b'{"a":' * 3000 + b"1" + b"}" * 3000
    hostile = [
        # (method, path, body, headers, statuses allowed)
        ("POST", "/api/v1/artworks", b'{"id": "big", "description": "' + b"x" * (8 * 2**20) + b'"}', keyed, {413}),
        ("PATCH", f"/api/v1/artworks/{some_id}", b'{"title": "' + b"x" * (2**20) + b'"}', keyed, {413}),
        ("POST", "/api/v1/artworks", b'{"id": "deep", "metadata": ' + deep_list + b"}", keyed, {400}),
        ("POST", "/api/v1/artworks", b'{"id": "deep2", "metadata": ' + deep_object + b"}", keyed, {400}),
        ("POST", "/api/v1/artworks", b'{"id": "utf", "title": "\xff\xfe\xc0\xaf"}', keyed, {400}),
        ("POST", "/api/v1/artworks", b'{"id": "surrogate", "title": "\\udc00\\ud800"}', keyed, {400}),
        ("POST", "/api/v1/artworks", b'{"id": "nan", "year_start": NaN}', keyed, {400}),
        ("POST", "/api/v1/artworks", b'{"id": "inf", "year_start": 1e400}', keyed, {400}),
        ("POST", "/api/v1/artworks", b'{"id": "bigint", "year_start": ' + b"9" * 4000 + b"}", keyed, {400}),
        ("POST", "/api/v1/artworks", _json({"id": "'; DROP TABLE artworks; --", "title": "x"}), keyed, {400}),
        ("POST", "/api/v1/artworks", _json({"id": "x1", "title": "<script>alert(1)</script>"}), plain, {401}),
        ("POST", "/api/v1/artworks", _json({"id": "x2", "url": "javascript:alert(1)"}), keyed, {400}),
        ("POST", "/api/v1/artworks", _json({"id": "x3", "year_start": 1900, "year_end": 1800}), keyed, {400}),
        ("POST", "/api/v1/artworks", _json({"id": some_id, "title": "<b>replaced</b>"}), keyed, {409}),
        ("POST", "/api/v1/artworks", b'{"id": "dup", "id": "a/b"}', keyed, {400}),
        ("PATCH", f"/api/v1/artworks/{some_id}", _json({"title": 1e308 * 10}), keyed, {400}),
        ("PATCH", f"/api/v1/artworks/{some_id}", _json({"year_start": -(10**30)}), keyed, {400}),
        ("DELETE", f"/api/v1/artworks/{some_id}", None, {"X-API-Key": "' OR '1'='1"}, {401}),
        ("DELETE", "/api/v1/artworks/1'%20OR%20'1'='1", None, {"X-API-Key": key}, {404}),
        ("DELETE", "/api/v1/artworks/%2e%2e%2f%2e%2e%2fartworks.sqlite", None, {"X-API-Key": key}, {404}),
        ("GET", "/api/v1/artworks/..%2F..%2Fartworks.sqlite", None, {}, {404}),
        ("GET", f"/api/v1/artworks/{some_id}/similar?k=-5", None, {}, {400}),
        ("GET", f"/api/v1/artworks/{some_id}/similar?k=" + "9" * 5000, None, {}, {400}),
        ("GET", f"/api/v1/artworks/{some_id}/similar?diversity=NaN", None, {}, {400}),
        ("GET", f"/api/v1/artworks/{some_id}/similar?" + "&".join(["where=a=b"] * 500), None, {}, {400}),
        ("GET", "/api/v1/artworks?where=title=%27%3B%20DROP%20TABLE%20artworks%3B--", None, {}, {200}),
        ("GET", "/api/v1/artworks?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E&limit=3", None, {}, {200}),
        ("POST", "/api/v1/similar", _json({"text": "<img src=x onerror=alert(1)> ' OR 1=1 --", "k": 3}), plain, {200}),
        ("POST", "/api/v1/similar", _json({"text": "\u0000\u0000", "k": 3}), plain, {200, 400}),
        ("POST", "/api/v1/similar", _json({"text": "a ship", "k": -1}), plain, {400}),
        ("POST", "/api/v1/similar", _json({"text": "a ship", "min_score": float("nan")}), plain, {400}),
        ("POST", "/api/v1/similar", _json({"like": {some_id: float("inf")}}), plain, {400}),
        ("POST", "/api/v1/similar", _json({"like": [some_id] * 51}), plain, {400}),
        ("POST", "/api/v1/similar", _json({"text": "a ship", "filters": {"title": ["x"] * 51}}), plain, {400}),
        ("POST", "/api/v1/critiques", _json({"text": "<script>" * 3000}), plain, {400}),
        ("POST", "/api/v1/critiques", _json({"id": some_id, "seed": 2**63}), plain, {400}),
        ("GET", f"/api/v1/artworks/{some_id}/critique?tone=%3Cscript%3E", None, {}, {400}),
    ]
    failures = []
    for method, path, body, headers, allowed in hostile:
        response = send(client, method, path, body, headers)
        if response.status_code not in allowed or "Traceback" in response.get_data(as_text=True):
            failures.append(f"{method} {path[:80]} -> {response.status_code} (allowed {sorted(allowed)})")
    assert not failures, "\n".join(failures)
    assert collection_fingerprint(service) == before
