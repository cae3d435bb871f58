"""A tiny real writer shared by the writer tests (trained once per session, in seconds).

Not a test module: pytest finds no tests here. The writer test modules call ``tiny_writer()``; the cache
makes the training run once per session whichever module asks first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from critic.records import LABEL_FIELDS, Artwork

LATENT_DIM = 16
RECORDS = 200


@dataclass
class TinyWriter:
    records: list[Artwork]
    embeddings: np.ndarray
    components: np.ndarray  # PCA basis standing in for the VAE encoder
    model: object
    metrics: dict

    # The style-model interface the Grounder asks for (critic.writer.grounding.StyleLike).
    def latents(self, embeddings: np.ndarray, records=None) -> np.ndarray:
        return (embeddings - self.embeddings.mean(0)) @ self.components

    def index_vectors(self, embeddings: np.ndarray, records=None) -> np.ndarray:
        return self.latents(embeddings)

    def encode(self, embeddings: np.ndarray, records=None) -> tuple[np.ndarray, np.ndarray]:
        latents = self.latents(embeddings)
        return latents, latents

    @staticmethod
    def attributes(latents: np.ndarray) -> list[dict[str, str]]:
        return [{} for _ in latents]

    @staticmethod
    def embed(texts: list[str]) -> np.ndarray:
        from critic.embed import embed_texts

        return embed_texts(texts)[0]

    def grounder(self):
        from critic.writer import Grounder, VectorNeighbours

        return Grounder(self.embed, self, VectorNeighbours(self.records, self.latents(self.embeddings)))


def attributes_of(record: Artwork) -> dict[str, str]:
    from critic.labels import label_of

    return {name: label_of(record, name) for name in LABEL_FIELDS if label_of(record, name)}


@functools.lru_cache(maxsize=1)
def tiny_writer() -> TinyWriter:
    from critic.corpus import load_walters
    from critic.embed import embed_texts
    from critic.writer.train import WriterTrainConfig, train_writer

    records = [r for r in load_walters(limit=400) if r.description][:RECORDS]
    embeddings = embed_texts([r.text() for r in records])[0]
    centred = embeddings - embeddings.mean(0)
    components = np.linalg.svd(centred, full_matrices=False)[2][:LATENT_DIM].T.astype(np.float32)
    config = WriterTrainConfig(epochs=2, embed_dim=32, cond_dim=16, hidden_dim=48, min_count=2, seed=0)
    model, metrics = train_writer(records, centred @ components, [attributes_of(r) for r in records], config=config)
    return TinyWriter(records, embeddings, components, model, metrics)
