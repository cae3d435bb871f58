"""The writing service: critic.writer grounded in the loaded Service, for the API routes and the CLI alike.

The drafter is the trained decoder when the home holds one (``<home>/writer``, trained by `critic build`
or `critic train writer`); until one is trained, the retrieval drafter stands in (a neighbour's description
with its facts swapped for the target's) and the evidence names it, so no response hides which one wrote.
"""

from __future__ import annotations

import logging

from critic.embed import MODEL_ID, cached_embedder
from critic.records import Artwork
from critic.service import Service
from critic.writer import (
    Critique,
    CritiqueWriter,
    Draft,
    Grounding,
    Neighbour,
    RetrievalDrafter,
    WriterModelError,
    build_lexicon,
    load_writer,
)
from critic.writer.protocol import default_drafter

NEIGHBOURS = 3
log = logging.getLogger(__name__)


class Writing:
    """Writes for artworks of the service's collection, or for new ones given as records."""

    def __init__(self, service: Service):
        self.service = service
        self._embed = cached_embedder(service.cache)
        # The fact check knows every creator of the collection, not only the writer's train split.
        lexicon = build_lexicon(service.store.all())
        drafter = RetrievalDrafter(lexicon, self._embed)
        if service.home.writer_dir.exists():
            try:
                model = load_writer(
                    service.home.writer_dir, latent_dim=service.style.latent_dim, embedding_model=MODEL_ID
                )
                drafter = default_drafter(model, self._embed, lexicon)
            except WriterModelError as exc:
                # A damaged or stale writer must not take critiques down: retrieval drafts (the evidence says so)
                # until `critic train writer` replaces it.
                log.warning("writer unusable, drafting by retrieval: %s", exc)
        self.writer = CritiqueWriter(drafter, lexicon)

    def ground(self, record: Artwork) -> Grounding:
        """What the writer knows of ``record``: its embedding, style latent, decoded attributes, neighbours."""
        style = self.service.style
        text = record.text()
        embedding = self._embed([text])[0]
        latent = style.latents(embedding[None, :], [text])
        hits = self.service.recommender.index.search(
            style.index_vectors(latent)[0], NEIGHBOURS + 1, exclude={record.id}
        )
        found = [(self.service.store.get(i), score) for i, score in hits]
        neighbours = [Neighbour(other, score) for other, score in found if other is not None][:NEIGHBOURS]
        return Grounding(record, embedding, latent[0], style.attributes(latent)[0], neighbours)

    def critique(self, record: Artwork, tone: str, seed: int) -> Critique:
        return self.writer.critique(self.ground(record), tone=tone, seed=seed)

    def describe(self, record: Artwork, seed: int) -> Draft:
        return self.writer.describe(self.ground(record), seed=seed)
