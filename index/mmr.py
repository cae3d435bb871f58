"""Maximal marginal relevance: trade relevance to the query for variety among the results."""

from __future__ import annotations

import numpy as np

#: The first pick is chosen among the MIN_POOL best candidates, each later pick among POOL_STEP more.
MIN_POOL = 50
POOL_STEP = 4


def pool_size(count: int, min_pool: int = MIN_POOL, pool_step: int = POOL_STEP) -> int:
    """How many relevance-ranked candidates ``mmr_order`` reads to pick ``count`` results."""
    return 0 if count <= 0 else min_pool + pool_step * (count - 1)


def mmr_order(
    relevance: np.ndarray,
    vectors: np.ndarray,
    count: int,
    diversity: float,
    *,
    min_pool: int = MIN_POOL,
    pool_step: int = POOL_STEP,
) -> list[int]:
    """Positions of ``count`` candidates in MMR order.

    ``relevance`` (n,) are the candidates' cosines to the query, best first (ties already broken by id),
    ``vectors`` (n, d) their unit vectors. Pick i maximises
    ``(1 - diversity) * relevance - diversity * max cosine to the picks so far``
    among the first ``pool_size(i + 1)`` candidates, earliest on ties. Because pick i never reads further
    down the list, the first picks do not change when more are asked for: pages of one query neither overlap
    nor leave gaps. ``diversity`` 0 keeps the relevance order; 1 ignores relevance after the first pick.

    Example:
        >>> v = np.array([[1.0, 0.0], [0.99, 0.14], [0.6, 0.8]])
        >>> mmr_order(np.array([0.9, 0.89, 0.7]), v, 2, diversity=0.5)
        [0, 2]
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must lie in 0..1, got {diversity}")
    count = min(count, len(relevance))
    if diversity == 0.0:
        return list(range(count))
    picked: list[int] = []
    closest = np.full(len(relevance), -np.inf)  # each candidate's highest cosine to a pick so far
    available = np.ones(len(relevance), dtype=bool)
    for i in range(count):
        window = min(len(relevance), pool_size(i + 1, min_pool, pool_step))
        if picked:
            gain = (1.0 - diversity) * relevance[:window] - diversity * closest[:window]
        else:
            gain = relevance[:window].astype(np.float64)
        gain = np.where(available[:window], gain, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
    return picked
