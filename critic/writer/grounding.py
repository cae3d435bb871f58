"""Building ``Grounding``s: the artwork's embedding, latent, decoded attributes and neighbours.

The writer does not load models itself; the caller passes the four functions, so the CLI and the API can
use the service's VAE and FAISS index while the evaluation searches the train split only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from critic.records import Artwork
from critic.writer.drafter import Embedder, Grounding, Neighbour

#: (record, its embedding, its latent, k) -> up to k nearest other artworks, best first
NeighbourSearch = Callable[[Artwork, np.ndarray, np.ndarray, int], list[Neighbour]]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class VectorNeighbours:
    """Exact cosine search over a fixed set of records (the train split, in the evaluation).

    ``space`` says which query vector to compare with ``vectors``: "latent" (VAE means, as the service's
    index does) or "embedding" (sentence embeddings). The record itself and records with its exact
    description are never returned.
    """

    def __init__(self, records: Sequence[Artwork], vectors: np.ndarray, space: str = "latent"):
        if space not in ("latent", "embedding"):
            raise ValueError(f"space must be 'latent' or 'embedding', got {space!r}")
        if len(records) != len(vectors):
            raise ValueError("records and vectors must have the same length")
        self.records = list(records)
        self.vectors = _unit(vectors)
        self.space = space

    def __call__(self, record: Artwork, embedding: np.ndarray, latent: np.ndarray, k: int) -> list[Neighbour]:
        query = _unit(latent if self.space == "latent" else embedding)
        scores = self.vectors @ query
        out: list[Neighbour] = []
        for i in np.argsort(-scores, kind="stable"):
            other = self.records[i]
            same_text = record.description.strip() and other.description.strip() == record.description.strip()
            if other.id == record.id or same_text:
                continue
            out.append(Neighbour(other, float(scores[i])))
            if len(out) == k:
                break
        return out


@dataclass
class Grounder:
    """Turns records into groundings with the service's (or the evaluation's) models."""

    embed: Embedder
    encode: Callable[[np.ndarray], np.ndarray]  # embeddings (n, 384) -> latents (n, d)
    decode: Callable[[np.ndarray], list[dict[str, str]]]  # latents -> decoded attribute dicts
    neighbours: NeighbourSearch

    def ground_many(self, records: Sequence[Artwork], k: int = 3) -> list[Grounding]:
        """Groundings of ``records``, embedding their texts in one batch."""
        if not records:
            return []
        embeddings = self.embed([r.text() for r in records])
        latents = self.encode(embeddings)
        attributes = self.decode(latents)
        return [
            Grounding(r, e, z, a, self.neighbours(r, e, z, k))
            for r, e, z, a in zip(records, embeddings, latents, attributes, strict=True)
        ]

    def ground(self, record: Artwork, k: int = 3) -> Grounding:
        return self.ground_many([record], k)[0]
