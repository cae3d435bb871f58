"""Whether two builds of one collection recommend alike: the per-artwork cosine between their latents and the
overlap of their top-k neighbours. tests/test_build_ray.py holds a Ray build of a 2,000-record slice to the
single-process build with these; bench/distributed.py does it on the whole bundled collection.

Example:
    >>> cosines(model_latents(single), shard_latents(ray_home)).min() >= 0.999      # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow.parquet as pq

from critic.build_ray import ENCODE, vector_matrix
from critic.embed import EmbeddingCache, embed_texts
from critic.home import Home
from critic.store import ArtworkStore
from critic.style_model import load_style_model
from index.store import VectorIndex


def shard_latents(home: Home) -> dict[str, np.ndarray]:
    """The StyleVAE latents a Ray build's encode actors wrote into ``home``'s shards, by artwork id."""
    latents: dict[str, np.ndarray] = {}
    for path in sorted((home.shards_dir / ENCODE).glob("part-*.parquet")):
        table = pq.read_table(path, columns=["id", "latent"])
        latents.update(zip(table["id"].to_pylist(), vector_matrix(table["latent"]), strict=True))
    return latents


def model_latents(home: Home) -> dict[str, np.ndarray]:
    """The latents of ``home``'s collection by its own style model, computed here from its embedding cache."""
    records = ArtworkStore(home.store_path).all()
    embeddings, _ = embed_texts([r.text() for r in records], EmbeddingCache(home.cache_path))
    latents = load_style_model(home.vae_dir).latents(embeddings, records)
    return dict(zip([r.id for r in records], latents, strict=True))


def cosines(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> np.ndarray:
    """The cosine between each artwork's two vectors, in the order of ``ours``; KeyError when ``theirs`` lacks one.

    Example:
        >>> cosines({"a": np.array([1.0, 0.0])}, {"a": np.array([2.0, 0.0])})
        array([1.])
    """
    a = np.stack(list(ours.values()))
    b = np.stack([theirs[i] for i in ours])
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def neighbour_overlap(ours: VectorIndex, theirs: VectorIndex, queries: Sequence[str], k: int = 10) -> np.ndarray:
    """For each query artwork, the share of its top ``k`` in ``ours`` (itself left out) that are in its top ``k``
    in ``theirs``, each index searched with its own vector of the query."""

    def top(index: VectorIndex, artwork_id: str) -> set[str]:
        return {i for i, _ in index.search(index.vector(artwork_id), k=k, exclude=[artwork_id])}

    return np.array([len(top(ours, q) & top(theirs, q)) / k for q in queries])
