"""Whether two builds of one collection recommend alike: the per-artwork cosine between their latents and the
overlap of their top-k neighbours. tests/test_build_ray.py holds a Ray build of a 2,000-record slice to the
single-process build with these; bench/distributed.py does it on the whole bundled collection.

Example:
    >>> cosines(model_latents(single), shard_latents(ray_home)).min() >= 0.999      # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from critic.build_ray import EMBED, ENCODE, vector_matrix
from critic.embed import EmbeddingCache, embed_texts, load_encoder
from critic.home import Home
from critic.records import Artwork
from critic.store import ArtworkStore
from critic.style_model import load_style_model
from index.store import VectorIndex


def copy_embedding_cache(source: Home, target: Home) -> None:
    """``target`` starts with ``source``'s embedding cache, as a rebuild would: a reference build of the same
    records then embeds nothing (embeddings_beside_the_encoder checks what it takes over)."""
    target.root.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source.cache_path) as original, sqlite3.connect(target.cache_path) as copy:
        original.backup(copy)  # WAL mode: the file alone may lack the latest pages


def shard_rows(home: Home, stage: str, columns: list[str]) -> pa.Table:
    """The rows a Ray build wrote into ``home``'s shards of ``stage`` (EMBED or ENCODE), in shard order."""
    paths = sorted((home.shards_dir / stage).glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p, columns=columns) for p in paths])


def embeddings_beside_the_encoder(home: Home, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of ``count`` embeddings from a Ray build's embed shards, and the same texts embedded by
    this process's encoder."""
    table = shard_rows(home, EMBED, ["record", "embedding"])
    rows = random.Random(seed).sample(range(table.num_rows), min(count, table.num_rows))
    texts = [Artwork.from_dict(json.loads(table["record"][i].as_py())).text() for i in rows]
    return vector_matrix(table["embedding"])[rows], load_encoder().encode(texts, normalize_embeddings=True)


def shard_latents(home: Home) -> dict[str, np.ndarray]:
    """The StyleVAE latents a Ray build's encode actors wrote into ``home``'s shards, by artwork id."""
    table = shard_rows(home, ENCODE, ["id", "latent"])
    return dict(zip(table["id"].to_pylist(), vector_matrix(table["latent"]), strict=True))


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


def neighbour_overlap(
    ours: VectorIndex, theirs: VectorIndex, queries: Sequence[str], k: int = 10, tie: float = 1e-4
) -> np.ndarray:
    """For each query artwork, the share of its top ``k`` in ``ours`` (itself left out) that are in its top ``k``
    in ``theirs``, each index searched with its own vector of the query.

    Artworks with the same text have the same vector, so a top ``k`` often ends inside a group of equal scores,
    ordered by id as FAISS returns them after differences in the last bits. A neighbour therefore counts as in
    ``theirs``' top ``k`` when its score there is within ``tie`` of the ``k``-th (two builds that differ in
    substance differ by far more).
    """
    shares = []
    for q in queries:
        mine = [i for i, _ in ours.search(ours.vector(q), k=k, exclude=[q])]
        hits = theirs.search(theirs.vector(q), k=k, exclude=[q])
        if not mine or not hits:
            shares.append(float(len(mine) == len(hits)))
            continue
        scores = theirs.vectors(mine) @ theirs.vector(q)
        shares.append(float((scores >= hits[-1][1] - tie).sum()) / k)
    return np.array(shares)
