"""The recommendation protocol on a hand-made 12-record fixture with known answers, and every variant on a build."""

import numpy as np
import pytest

from critic.evaluate import (
    EVAL_LABELS,
    dense_scorer,
    label_blind,
    metadata_only,
    nearest_neighbours,
    other_creators,
    paired_difference,
    precision_at_k,
    summarise,
    text_ids_of,
)
from critic.records import Artwork

# Three groups of four on a circle: two "Gothic" groups by two workshops each, one "Baroque" group. Angles are
# set so that each record's nearest are its own group in a known order.
ANGLES = [0, 4, 8, 12, 40, 44, 48, 52, 180, 184, 188, 192]
PERIODS = ["Gothic"] * 8 + ["Baroque"] * 4
CREATORS = ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E", "F", "F"]


@pytest.fixture()
def twelve():
    records = [
        Artwork(id=str(i), title=f"Work {i}", creators=[c], period=p, culture="French" if i < 6 else "Italian",
                description=f"text {i}")
        for i, (c, p) in enumerate(zip(CREATORS, PERIODS, strict=True))
    ]
    radians = np.deg2rad(ANGLES)
    vectors = np.stack([np.cos(radians), np.sin(radians)], axis=1)
    return records, vectors


def test_nearest_neighbours_rank_by_cosine_and_skip_the_query_and_its_duplicate_texts(twelve):
    records, vectors = twelve
    scorer = dense_scorer(vectors)
    near = nearest_neighbours(scorer, np.array([0, 8]), text_ids_of(records), k=3)
    assert near.tolist() == [[1, 2, 3], [9, 10, 11]]
    # Records 0 and 1 share a text: 1 is a duplicate of 0 and never its neighbour.
    records[1].title, records[1].description = records[0].title, records[0].description
    assert nearest_neighbours(scorer, np.array([0]), text_ids_of(records), k=3).tolist() == [[2, 3, 4]]


def test_other_creators_rules_out_every_work_by_the_querys_creators(twelve):
    records, vectors = twelve
    blocked = other_creators(records)
    assert blocked(np.array([0]))[0].tolist() == [c == "A" for c in CREATORS]
    near = nearest_neighbours(dense_scorer(vectors), np.array([0]), text_ids_of(records), 3, blocked)
    assert near.tolist() == [[2, 3, 4]]  # 1 is by A too


def test_precision_at_k_counts_neighbours_that_share_the_querys_label(twelve):
    records, vectors = twelve
    hits = precision_at_k(dense_scorer(vectors), records, np.array([0, 4, 8]), k=4, labels=("period", "culture"))
    # 0's four nearest are 1, 2, 3, 4 (all Gothic); 4's are 5, 6, 7, 3 (Gothic); 8's are 9, 10, 11 and then
    # the nearest of the rest, 7 at 128 degrees (Gothic).
    assert hits["period"].tolist() == [1.0, 1.0, 0.75]
    # culture: 0 (French) -> 1..4 French; 4 (French) -> 5 French, 6, 7 Italian, 3 French; 8 (Italian) -> all Italian
    assert hits["culture"].tolist() == [1.0, 0.5, 1.0]


def test_unlabelled_queries_are_not_scored(twelve):
    records, vectors = twelve
    records[0].period = ""
    hits = precision_at_k(dense_scorer(vectors), records, np.array([0, 8]), k=3, labels=("period",))
    assert hits["period"].tolist() == [1.0]


def test_label_blind_and_metadata_only_keep_the_evaluated_label_out_of_the_text():
    record = Artwork(id="1", title="Bowl", creators=["Potter"], period="Ming", culture="Chinese",
                     medium="porcelain", description="A Ming bowl.")
    undescribed = Artwork(id="2", title="Bowl", period="Ming", culture="Chinese", medium="porcelain")
    assert "Ming" in undescribed.text() and "Ming" not in label_blind(undescribed, ["period"]).text()
    assert "Chinese" in label_blind(undescribed, ["period"]).text()
    stripped = metadata_only(record).text()
    assert not any(word in stripped for word in ("Ming", "Chinese", "A Ming bowl"))
    assert "porcelain" in stripped and "Potter" in stripped


def test_intervals_and_paired_differences():
    constant = summarise({"period": np.full(50, 0.4), "style": np.full(30, 0.8)})
    assert constant["period"] == {"p": 0.4, "low": 0.4, "high": 0.4, "queries": 50}
    assert constant["macro"]["p"] == pytest.approx(0.6) and constant["macro"]["low"] == pytest.approx(0.6)
    rng = np.random.default_rng(0)
    a = {"period": rng.random(400)}
    assert paired_difference(a, a) == {"difference": 0.0, "low": 0.0, "high": 0.0}
    better = {"period": a["period"] + 0.1}
    diff = paired_difference(better, a)
    assert diff["difference"] == pytest.approx(0.1) and diff["low"] == pytest.approx(0.1)


@pytest.mark.slow
def test_every_variant_and_method_runs_on_a_build(built_home):
    from critic.eval_recommend import SHIPPED, UNSUPERVISED, evaluate_recommendations

    result = evaluate_recommendations(built_home, side="validation")
    assert list(result["precision"]) == ["as-is", "other-creators", "label-blind", "metadata-only"]
    for variant, methods in result["precision"].items():
        assert {*UNSUPERVISED, "latent", SHIPPED} <= set(methods)
        for row in methods.values():
            assert set(row) >= {"macro"} and row["macro"]["low"] <= row["macro"]["p"] <= row["macro"]["high"]
        assert set(methods[SHIPPED]) == {*EVAL_LABELS, "macro"}, variant  # label-blind gathers one run per label
    margin = result["shipped_minus_best_unsupervised"]["other-creators"]
    assert margin["baseline"] in UNSUPERVISED and margin["low"] <= margin["difference"] <= margin["high"]
    # The evaluation's texts never enter the build's embedding cache.
    assert (built_home.eval_dir / "embeddings.sqlite").exists()
