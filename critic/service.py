"""Service: one loaded build (store, StyleVAE, index, recommender) that the CLI and the API share.

The SQLite store is the source of truth. Loading reconciles the saved index with it (vectors for records that
are new or whose text changed, removal of deleted ones), so the index survives crashes and stale saves.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence

import numpy as np

from critic.embed import MODEL_ID, EmbeddingCache, embed_texts, encode_query
from critic.home import Home
from critic.records import Artwork
from critic.store import ArtworkStore
from critic.style_model import load_style_model
from index.errors import IndexStoreError
from index.recommend import Recommender
from index.store import VectorIndex


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Service:
    """Everything needed to answer queries about one build, kept in step with its store.

    Example:
        >>> service = Service.load(Home.resolve())                    # doctest: +SKIP
        >>> service.recommender.similar("37", k=3).to_json()["results"]  # doctest: +SKIP
    """

    def __init__(self, home: Home, log: Callable[[str], None] = _log):
        self.home = home
        self.store = ArtworkStore(home.store_path)
        self.cache = EmbeddingCache(home.cache_path)
        self.style = load_style_model(home.vae_dir, expect={"embedding_model": MODEL_ID})
        self.identity = {"embedding_model": MODEL_ID, "vae": self.style.meta["data_hash"]}
        self._lock = threading.RLock()
        self.seq = self.store.last_change()  # before reading: a write racing the load is applied by refresh()
        records = self.store.all()
        latents = self.latents(records, progress=True)
        attributes = dict(zip((r.id for r in records), self.style.attributes(latents), strict=True))
        index = self._load_or_new_index(log)
        fingerprints = {r.id: r.text_hash() for r in records}
        diff = index.diff(fingerprints)
        rows = {r.id: i for i, r in enumerate(records)}
        if diff.to_encode:
            chosen = [rows[i] for i in diff.to_encode]
            vectors = self.style.index_vectors(latents[chosen])
            index.upsert(diff.to_encode, vectors, [fingerprints[i] for i in diff.to_encode])
        if diff.removed:
            index.remove(diff.removed)
        if diff.to_encode or diff.removed:
            log(f"index: reconciled with the store ({len(diff.to_encode)} new or changed, {len(diff.removed)} removed)")
            try:
                index.save(home.index_dir)
            except OSError as exc:  # a full disk must not keep the service down: the next start reconciles again
                log(f"index: not saved ({exc}); it is complete in memory and is reconciled again at the next start")
        self.recommender = Recommender(
            index, {r.id: r for r in records}, encode_text=self.encode_text, attributes=attributes
        )

    @classmethod
    def load(cls, home: Home, log: Callable[[str], None] = _log) -> Service:
        return cls(home, log)

    def _load_or_new_index(self, log: Callable[[str], None]) -> VectorIndex:
        dim = self.style.latent_dim
        try:
            return VectorIndex.load(self.home.index_dir, dim=dim, identity=self.identity)
        except IndexStoreError as exc:
            if self.home.index_dir.exists():
                log(f"index: {exc}; rebuilding it from the store")
            return VectorIndex(dim, identity=self.identity)

    def latents(self, records: Sequence[Artwork], progress: bool = False) -> np.ndarray:
        """Posterior means of the records' texts (raw, not normalised: the attribute heads want them so)."""
        return self.text_latents([r.text() for r in records], progress)

    def text_latents(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Posterior means of any texts (embedded through the build's cache)."""
        embeddings, _ = embed_texts(texts, self.cache, progress=progress)
        return self.style.latents(embeddings, texts)

    def encode_text(self, text: str) -> np.ndarray:
        """A free-text query's unit latent vector, as the index stores artworks."""
        return self.style.index_vectors(self.style.latents(encode_query(text)[None, :], [text]))[0]

    def save_index(self) -> None:
        self.recommender.index.save(self.home.index_dir)

    # ------------------------------------------------------------------ writing

    def upsert(self, records: Sequence[Artwork]) -> None:
        """Embed records, commit them to the store, then make them searchable.

        Embedded first: the embedding cache is the other file a write grows, so a full disk fails the write
        before anything is committed. Committed before indexed: the store is the truth.
        """
        with self._lock:
            latents = self.latents(records)
            self.store.upsert_many(records)
            self._index_latents(records, latents)

    def delete(self, artwork_id: str) -> bool:
        with self._lock:
            deleted = self.store.delete(artwork_id)
            self.recommender.remove(artwork_id)
            return deleted

    def refresh(self) -> int:
        """Apply writes other processes committed to the store since the last look; returns how many."""
        with self._lock:
            self.seq, changed = self.store.changes_since(self.seq)
            present = [r for r in (self.store.get(i) for i in changed) if r is not None]
            for gone in set(changed) - {r.id for r in present}:
                self.recommender.remove(gone)
            self._index_records(present)
            return len(changed)

    def _index_records(self, records: Sequence[Artwork]) -> None:
        if records:
            self._index_latents(records, self.latents(records))

    def _index_latents(self, records: Sequence[Artwork], latents: np.ndarray) -> None:
        if not records:
            return
        vectors, attributes = self.style.index_vectors(latents), self.style.attributes(latents)
        for record, vector, decoded in zip(records, vectors, attributes, strict=True):
            self.recommender.upsert(record, vector, decoded)
