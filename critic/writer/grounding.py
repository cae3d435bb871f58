"""Building ``Grounding``s: the artwork's embedding, latent, decoded attributes and neighbours.

The writer loads no models itself. A ``Grounder`` takes an embedder, a style model (anything with
``latents``, ``index_vectors`` and ``encode`` (both) of ``(embeddings, records)``, and ``attributes(latents)``, as
critic.style_model.StyleModel has) and a neighbour search, so the CLI and the API can use the service's
FAISS index while the evaluation searches the train split only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from critic.records import Artwork
from critic.vectors import normalise
from critic.writer.drafter import Embedder, Grounding, Neighbour

#: (record, its embedding, its index vector, k) -> up to k nearest other artworks, best first
NeighbourSearch = Callable[[Artwork, np.ndarray, np.ndarray, int], list[Neighbour]]


class StyleLike(Protocol):
    """What the writer needs from the style model (critic.style_model.StyleModel fits)."""

    def latents(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> np.ndarray: ...

    def index_vectors(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> np.ndarray: ...

    def encode(self, embeddings: np.ndarray, records: Sequence[Artwork]) -> tuple[np.ndarray, np.ndarray]: ...

    def attributes(self, latents: np.ndarray) -> list[dict[str, str]]: ...

    @property
    def latent_dim(self) -> int: ...


class VectorNeighbours:
    """Exact cosine search over a fixed set of records (the train split, in the evaluation).

    ``vectors`` are the records' index vectors. The record itself and records with its exact description
    are never returned.
    """

    def __init__(self, records: Sequence[Artwork], vectors: np.ndarray):
        if len(records) != len(vectors):
            raise ValueError("records and vectors must have the same length")
        self.records = list(records)
        self.vectors = normalise(vectors)

    def __call__(self, record: Artwork, embedding: np.ndarray, index_vector: np.ndarray, k: int):
        query = normalise(index_vector)
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


def attribute_confidences(style: StyleLike, latents: np.ndarray) -> list[dict[str, float]]:
    """The style model's probability of its most likely class per label (label -> p), per latent; empty dicts
    for a style model without attribute heads (``encoder.attribute_probabilities`` and ``vocab.classes``)."""
    encoder, vocab = getattr(style, "encoder", None), getattr(style, "vocab", None)
    if encoder is None or vocab is None:
        return [{} for _ in latents]
    probabilities = encoder.attribute_probabilities(latents)
    out: list[dict[str, float]] = [{} for _ in latents]
    for name in vocab.classes:
        for row, p in enumerate(probabilities[name].max(-1).tolist()):
            out[row][name] = float(p)
    return out


@dataclass
class Grounder:
    """Turns records into groundings with the service's (or the evaluation's) models."""

    embed: Embedder
    style: StyleLike
    neighbours: NeighbourSearch

    def ground_many(self, records: Sequence[Artwork], k: int = 3) -> list[Grounding]:
        """Groundings of ``records``, embedding their texts in one batch."""
        if not records:
            return []
        texts = [r.text() for r in records]
        embeddings = self.embed(texts)
        latents, index_vectors = self.style.encode(embeddings, records)
        attributes = self.style.attributes(latents)
        confidences = attribute_confidences(self.style, latents)
        rows = zip(records, embeddings, latents, attributes, index_vectors, confidences, strict=True)
        return [Grounding(r, e, z, a, self.neighbours(r, e, v, k), c) for r, e, z, a, v, c in rows]

    def ground(self, record: Artwork, k: int = 3) -> Grounding:
        return self.ground_many([record], k)[0]
