"""Critiques and descriptions for the API: critic.writer grounded in the loaded Service.

The drafter is the trained decoder when the home holds one (``<home>/writer``, saved with
``WriterModel.save``); until a build trains it, the retrieval drafter stands in (a neighbour's description
with its facts swapped for the target's) and the evidence names it, so no response hides which one wrote.
"""

from __future__ import annotations

import numpy as np

from critic.embed import MODEL_ID, embed_texts, normalise
from critic.records import Artwork
from critic.service import Service
from critic.train import encode_latents
from critic.writer import (
    Critique,
    CritiqueWriter,
    DecoderDrafter,
    Draft,
    Grounder,
    Neighbour,
    RetrievalDrafter,
    build_lexicon,
    load_writer,
)

WRITER_DIR = "writer"
NEIGHBOURS = 3


class Writing:
    """Writes for artworks of the service's collection, or for new ones given as records."""

    def __init__(self, service: Service):
        self.service = service
        writer_dir = service.home.root / WRITER_DIR
        if writer_dir.exists():
            model = load_writer(writer_dir, latent_dim=service.model.config.latent_dim, embedding_model=MODEL_ID)
            drafter = DecoderDrafter(model, self._embed, neighbours=NEIGHBOURS)
            lexicon = model.lexicon
        else:
            lexicon = build_lexicon(service.store.all())
            drafter = RetrievalDrafter(lexicon, self._embed)
        self.writer = CritiqueWriter(drafter, lexicon)
        self.grounder = Grounder(self._embed, self._encode, service.attributes, self._neighbours)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return embed_texts(texts, self.service.cache)[0]

    def _encode(self, embeddings: np.ndarray) -> np.ndarray:
        return encode_latents(self.service.model, embeddings)

    def _neighbours(self, record: Artwork, embedding: np.ndarray, latent: np.ndarray, k: int) -> list[Neighbour]:
        """The nearest other artworks of the collection in the style latent, as the index ranks them."""
        hits = self.service.recommender.index.search(normalise(latent), k + 1, exclude={record.id})
        found = [(self.service.store.get(i), score) for i, score in hits]
        return [Neighbour(other, score) for other, score in found if other is not None][:k]

    def critique(self, record: Artwork, tone: str, seed: int) -> Critique:
        return self.writer.critique(self.grounder.ground(record, NEIGHBOURS), tone=tone, seed=seed)

    def describe(self, record: Artwork, seed: int) -> Draft:
        return self.writer.describe(self.grounder.ground(record, NEIGHBOURS), seed=seed)
