"""Recommender over real FAISS: filters in the search, stable pages, like/unlike, diversity, explanations."""

from __future__ import annotations

import numpy as np
import pytest

from critic.records import Artwork
from index.errors import IndexMismatchError, QueryError, UnknownArtworkError
from index.recommend import Recommender, SimilarQuery
from index.store import VectorIndex
from index.synthetic import clustered_vectors

# period, culture, classification, keywords, first year: one group per mixture cluster
GROUPS = [
    ("Renaissance", "Italian", "Painting", ["madonna", "gold leaf"], 1450),
    ("Edo", "Japanese", "Print", ["woodblock", "landscape"], 1700),
    ("Archaic", "Greek", "Ceramic", ["amphora", "black-figure"], -600),
    ("Gothic", "French", "Manuscript", ["illumination", "psalter"], 1250),
    ("Qing", "Chinese", "Ceramic", ["porcelain", "dragon"], 1650),
    ("Baroque", "Dutch", "Painting", ["still life", "tulip"], 1600),
]
N = 300
DIM = 32


def group_record(n: int, group: int) -> Artwork:
    period, culture, classification, keywords, year = GROUPS[group]
    return Artwork(
        id=f"w{n:03d}",
        title=f"{classification} {n}",
        creators=[f"Master of {culture} {n % 3}"],
        period=period,
        culture=culture,
        classification=classification,
        keywords=[*keywords, f"motif {n % 5}"],
        year_start=year + n % 40,
        year_end=year + n % 40 + 10,
        description=f"{period} {classification.lower()} number {n}.",
    )


@pytest.fixture(scope="module")
def collection() -> tuple[dict[str, Artwork], np.ndarray, np.ndarray]:
    vectors, labels = clustered_vectors(N, dim=DIM, clusters=len(GROUPS), seed=7)
    records = {f"w{n:03d}": group_record(n, int(labels[n])) for n in range(N)}
    # w001 repeats w000's text (a catalogue duplicate), so it has the same latent too.
    twin = next(n for n in range(1, N) if labels[n] == labels[0])
    records[f"w{twin:03d}"] = Artwork(**{**records["w000"].to_dict(), "id": f"w{twin:03d}"})
    vectors[twin] = vectors[0]
    return records, vectors, labels


def make_recommender(collection, kind: str) -> Recommender:
    records, vectors, _ = collection
    index = VectorIndex.build(list(records), vectors, ivf_threshold=100 if kind == "ivf" else 10_000, nprobe=2)
    if kind == "ivf":
        index.filter_depth = 0  # reach the probed-lists-first path with filters too
    assert index.kind == kind
    attributes = {i: {"period": r.period, "culture": r.culture} for i, r in records.items()}
    return Recommender(index, records, attributes=attributes)


@pytest.fixture(scope="module", params=["flat", "ivf"])
def recommender(collection, request) -> Recommender:
    return make_recommender(collection, request.param)


def ids_of(answer) -> list[str]:
    return [r.id for r in answer.results]


def twin_of_w000(collection) -> str:
    records, _, _ = collection
    return next(i for i, r in records.items() if i != "w000" and r.text() == records["w000"].text())


def test_similar_excludes_the_artwork_and_its_duplicate_texts_and_explains(recommender, collection):
    records, _, labels = collection
    answer = recommender.similar("w000", k=10)
    assert len(answer.results) == 10 and answer.next_offset == 10
    assert "w000" not in ids_of(answer) and twin_of_w000(collection) not in ids_of(answer)
    assert all(records[i].period == records["w000"].period for i in ids_of(answer))
    scores = [r.score for r in answer.results]
    assert scores == sorted(scores, reverse=True)
    first = answer.results[0]
    assert first.why[0] == f"style similarity {first.score:.2f}"
    assert f"same period: {records['w000'].period}" in first.why
    assert any(line.startswith("both decoded as period:") for line in first.why)


def test_filters_apply_inside_the_search_and_return_k_matches(recommender, collection):
    records, _, _ = collection
    # Dutch works are far from the Renaissance query artwork: only an in-search filter finds 10 of them.
    answer = recommender.similar("w000", k=10, where=["culture=Dutch"])
    assert len(answer.results) == 10
    assert all(records[i].culture == "Dutch" for i in ids_of(answer))
    ranged = recommender.similar("w000", k=10, where=["culture=Dutch|Chinese", "year=1600..1620"])
    expected = {
        i
        for i, r in records.items()
        if r.culture in ("Dutch", "Chinese") and r.year_start <= 1620 and r.year_end >= 1600
    }
    assert len(expected) >= 10 and set(ids_of(ranged)) <= expected and len(ranged.results) == 10
    few = recommender.similar("w000", k=10, where={"id": ["w010", "w250", "w299"]})
    assert sorted(ids_of(few)) == ["w010", "w250", "w299"] and few.next_offset is None


@pytest.mark.parametrize("diversity", [0.0, 0.5])
def test_pages_have_no_overlap_and_no_gap(recommender, diversity):
    whole = ids_of(recommender.similar("w042", k=60, diversity=diversity))
    paged, offset = [], 0
    while offset is not None and offset < 60:
        page = recommender.similar("w042", k=7, offset=offset, diversity=diversity)
        paged += ids_of(page)
        offset = page.next_offset
    assert paged[:60] == whole and len(set(paged)) == len(paged)


def test_the_last_page_of_a_filter_says_there_is_no_next(recommender, collection):
    records, _, _ = collection
    greek = {i for i, r in records.items() if r.culture == "Greek"} - {"w000", twin_of_w000(collection)}
    pages, offset = [], 0
    while offset is not None:
        page = recommender.similar("w000", k=4, offset=offset, where=["culture=greek"])
        pages.append(ids_of(page))
        offset = page.next_offset
    assert sum(pages, []) == ids_of(recommender.similar("w000", k=len(greek), where=["culture=greek"]))
    assert set(sum(pages, [])) == greek and all(len(p) == 4 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 4


def centroid(vectors: np.ndarray, labels: np.ndarray, group: int) -> np.ndarray:
    mean = vectors[labels == group].mean(axis=0)
    return mean / np.linalg.norm(mean)


def test_liked_examples_pull_and_disliked_examples_push(recommender, collection):
    records, vectors, labels = collection
    ids = list(records)
    liked = [ids[n] for n in np.flatnonzero(labels == 1)[:3]]
    # The cluster nearest to the liked one is the one a dislike should push away from.
    near = max(
        (g for g in range(len(GROUPS)) if g != 1),
        key=lambda g: centroid(vectors, labels, 1) @ centroid(vectors, labels, g),
    )
    disliked = [ids[n] for n in np.flatnonzero(labels == near)[:3]]
    plain = recommender.recommend(liked, k=20)
    pushed = recommender.recommend(liked, unlike=disliked, k=20)
    assert all(labels[ids.index(i)] == 1 for i in ids_of(plain)[:10])
    away = centroid(vectors, labels, near)
    closeness = [float(np.mean(recommender.index.vectors(ids_of(a)) @ away)) for a in (plain, pushed)]
    assert closeness[1] < closeness[0]
    assert not set(ids_of(pushed)) & set(liked + disliked)
    assert any(line.startswith("closest liked artwork: ") for line in pushed.results[0].why)
    weighted = recommender.recommend({liked[0]: 5.0, liked[1]: 0.1}, k=5)
    assert weighted.query.to_json()["like"] == {liked[0]: 5.0, liked[1]: 0.1}


def test_diversity_lowers_the_mean_pairwise_similarity(recommender):
    def spread(diversity: float) -> float:
        found = recommender.index.vectors(ids_of(recommender.similar("w100", k=10, diversity=diversity)))
        sims = found @ found.T
        return float((sims.sum() - len(found)) / (len(found) * (len(found) - 1)))

    assert spread(0.0) > spread(0.6)


def test_min_score_and_exclude(recommender):
    top = recommender.similar("w000", k=30)
    cut = top.results[12].score
    above = recommender.similar("w000", k=30, min_score=cut)
    assert all(r.score >= cut for r in above.results) and 13 <= len(above.results) < 30
    assert above.next_offset is None
    skipped = ids_of(top)[:5]
    rest = recommender.similar("w000", k=10, exclude=skipped)
    assert ids_of(rest) == ids_of(top)[5:15]


def test_other_creators_and_a_cap_per_creator(recommender, collection):
    records, _, _ = collection
    own = set(records["w000"].creators)
    plain = recommender.similar("w000", k=20)
    assert any(own & set(r.creators) for r in plain.results)  # the fixture's creators each hold ~17 works
    others = recommender.similar("w000", k=20, exclude_same_creator=True)
    assert len(others.results) == 20 and not any(own & set(r.creators) for r in others.results)
    # What remains keeps the plain ranking's order.
    kept = [i for i in ids_of(plain) if not own & set(records[i].creators)]
    assert ids_of(others)[: len(kept)] == kept
    capped = [recommender.similar("w000", k=4, offset=o, max_per_creator=2) for o in (0, 4)]
    names = [r.creators[0] for page in capped for r in page.results]
    assert len(names) == 8 and max(names.count(n) for n in names) == 2
    assert not set(ids_of(capped[0])) & set(ids_of(capped[1]))  # pages stay disjoint
    with pytest.raises(QueryError, match="max_per_creator"):
        recommender.similar("w000", max_per_creator=0)


def test_to_json_has_exactly_the_agreed_shape(recommender):
    answer = recommender.similar("w000", k=3, offset=2, where=["period=Renaissance"], diversity=0.2).to_json()
    assert set(answer) == {"query", "results", "next_offset"}
    assert answer["query"] == {
        "id": "w000",
        "k": 3,
        "offset": 2,
        "where": ["period=renaissance"],
        "exclude": [],
        "diversity": 0.2,
        "min_score": None,
        "exclude_same_creator": False,
        "max_per_creator": None,
    }
    assert answer["next_offset"] == 5
    assert all(set(r) == {"id", "score", "title", "creators", "why", "image_url", "url"} for r in answer["results"])
    assert all(isinstance(r["why"], list) and r["why"] for r in answer["results"])


def test_unknown_ids_and_bad_queries_raise_clear_errors(recommender):
    with pytest.raises(UnknownArtworkError) as error:
        recommender.similar("nope")
    assert isinstance(error.value, KeyError) and str(error.value) == "unknown artwork id 'nope'"
    with pytest.raises(UnknownArtworkError):
        recommender.recommend(["w001", "nope"])
    with pytest.raises(QueryError, match="exactly one"):
        recommender.search(SimilarQuery(id="w001", text="a vase"))
    with pytest.raises(QueryError, match="exactly one"):
        recommender.search(SimilarQuery())
    with pytest.raises(QueryError, match="text encoder"):
        recommender.similar_to_text("a vase")
    with pytest.raises(QueryError, match="k must be"):
        recommender.similar("w001", k=0)
    with pytest.raises(QueryError, match="may not exceed"):
        recommender.similar("w001", k=10, offset=995)
    with pytest.raises(QueryError, match="positive"):
        recommender.recommend({"w001": -1.0})
    with pytest.raises(QueryError, match="cancel out"):
        Recommender(recommender.index, recommender._records, dislike_weight=1.0).recommend(["w001"], unlike=["w001"])


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_upsert_and_remove_through_the_recommender(collection, kind):
    recommender = make_recommender(collection, kind)
    records, vectors, _ = collection
    newcomer = Artwork(id="new", title="Tulip vase", culture="Dutch", period="Baroque", keywords=["tulip"])
    recommender.upsert(newcomer, vectors[0] * 0.9 + vectors[5] * 0.1, {"period": "Baroque"})
    assert "new" in ids_of(recommender.similar("w000", k=3))
    assert "new" in ids_of(recommender.similar("w000", k=3, where=["keywords=tulip", "period=baroque"]))
    assert recommender.index.fingerprint("new") == newcomer.text_hash()
    gone = ids_of(recommender.similar("w000", k=5))
    for artwork_id in gone:
        assert recommender.remove(artwork_id)
    assert not recommender.remove("never-there")
    assert not set(gone) & set(ids_of(recommender.similar("w000", k=50)))
    assert not set(gone) & set(ids_of(recommender.similar("w000", k=50, where=["culture=Italian|Dutch"])))
    with pytest.raises(UnknownArtworkError):
        recommender.similar("new")


def test_an_index_with_ids_lacking_records_is_refused(collection):
    records, vectors, _ = collection
    index = VectorIndex.build(list(records), vectors)
    with pytest.raises(IndexMismatchError, match="without a record"):
        Recommender(index, {i: r for i, r in records.items() if i != "w005"})


def test_text_queries_through_the_real_sentence_model():
    from critic.embed import embed_texts, encode_query

    records = {r.id: r for r in (group_record(n, n % len(GROUPS)) for n in range(60))}
    for r in records.values():
        period, culture, classification, keywords, _ = GROUPS[int(r.id[1:]) % len(GROUPS)]
        r.description = f"A {culture} {classification.lower()} of the {period} period showing {keywords[0]}."
    embeddings, _ = embed_texts([r.text() for r in records.values()])
    # A fixed random projection stands in for the VAE encoder: 384 -> 64 dims, cosines roughly kept.
    projection = np.linalg.qr(np.random.default_rng(0).standard_normal((384, 64)))[0].T.astype(np.float32)
    index = VectorIndex.build(list(records), embeddings @ projection.T)
    recommender = Recommender(index, records, encode_text=lambda text: projection @ encode_query(text))
    answer = recommender.similar_to_text("Japanese woodblock print", k=5)
    assert all(records[i].culture == "Japanese" for i in ids_of(answer))
    assert any(line.startswith("query words found: japanese") for line in answer.results[0].why)
    assert answer.to_json()["query"]["text"] == "Japanese woodblock print"
