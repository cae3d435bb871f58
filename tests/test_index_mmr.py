"""MMR: diversity spreads the results, pick i reads only its window, and longer lists keep their prefix."""

from __future__ import annotations

import numpy as np
import pytest

from index.mmr import mmr_order, pool_size
from index.synthetic import clustered_vectors


@pytest.fixture(scope="module")
def candidates() -> tuple[np.ndarray, np.ndarray]:
    vectors, _ = clustered_vectors(400, dim=16, clusters=8, seed=3)
    query = vectors[0]
    relevance = vectors @ query
    order = np.argsort(-relevance, kind="stable")
    return relevance[order], vectors[order]


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    sims = vectors @ vectors.T
    n = len(vectors)
    return float((sims.sum() - n) / (n * (n - 1)))


def test_no_diversity_keeps_the_relevance_order(candidates):
    relevance, vectors = candidates
    assert mmr_order(relevance, vectors, 12, 0.0) == list(range(12))


def test_diversity_lowers_the_mean_pairwise_similarity(candidates):
    relevance, vectors = candidates
    spreads = [mean_pairwise_cosine(vectors[mmr_order(relevance, vectors, 10, d)]) for d in (0.0, 0.3, 0.7)]
    assert spreads[0] > spreads[1] > spreads[2]
    assert mmr_order(relevance, vectors, 10, 0.7)[0] == 0  # the most relevant still leads


def test_each_pick_comes_from_its_window_and_longer_lists_keep_their_prefix(candidates):
    relevance, vectors = candidates
    long = mmr_order(relevance, vectors, 60, 0.8, min_pool=10, pool_step=2)
    assert len(set(long)) == 60
    assert all(position < pool_size(i + 1, 10, 2) for i, position in enumerate(long))
    for count in (1, 7, 33):
        assert mmr_order(relevance, vectors, count, 0.8, min_pool=10, pool_step=2) == long[:count]
        # Candidates past the last window change nothing.
        window = pool_size(count, 10, 2)
        assert mmr_order(relevance[:window], vectors[:window], count, 0.8, min_pool=10, pool_step=2) == long[:count]


def test_fewer_candidates_than_asked_gives_them_all_and_bad_diversity_is_refused(candidates):
    relevance, vectors = candidates
    assert sorted(mmr_order(relevance[:5], vectors[:5], 10, 0.5)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="0..1"):
        mmr_order(relevance, vectors, 3, 1.5)
