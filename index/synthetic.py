"""Clustered unit vectors that stand in for VAE latents in benchmarks and tests.

A Gaussian mixture on the sphere: cluster sizes follow a Zipf law (a collection has a few large groups, such
as coins or prints, and a long tail), each cluster has its own spread, and every point is normalised.
"""

from __future__ import annotations

import numpy as np


def clustered_vectors(
    count: int, dim: int = 64, clusters: int = 256, seed: int = 0, spread: tuple[float, float] = (0.4, 0.9)
) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, cluster labels)``: ``count`` unit float32 vectors drawn from a ``clusters``-way mixture.

    A point is its cluster's unit centre plus Gaussian noise of norm about ``s`` (``s`` drawn per cluster
    from ``spread``), so its cosine to the centre is about 1 / sqrt(1 + s^2), 0.74 to 0.93 by default.

    Example:
        >>> vectors, labels = clustered_vectors(1000, dim=32, clusters=10)
        >>> vectors.shape, bool(np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5))
        ((1000, 32), True)
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spreads = rng.uniform(*spread, size=clusters)
    weights = 1.0 / np.arange(1, clusters + 1)
    labels = rng.choice(clusters, size=count, p=weights / weights.sum())
    vectors = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, 100_000):  # in chunks, to keep float64 temporaries small at 1M
        part = labels[start : start + 100_000]
        noise = rng.standard_normal((len(part), dim)) * (spreads[part] / np.sqrt(dim))[:, None]
        chunk = centres[part] + noise
        vectors[start : start + len(part)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors, labels
