"""Service: one loaded build (store, StyleVAE, index, recommender) that the CLI and the API share.

The SQLite store is the source of truth. Loading reconciles the saved index with it (vectors for records that
are new or whose text changed, removal of deleted ones), so the index survives crashes and stale saves.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from critic.embed import MODEL_ID, EmbeddingCache, embed_texts, encode_query
from critic.home import Home
from critic.records import Artwork
from critic.store import ArtworkStore, Outcome
from critic.style_model import load_style_model
from index.errors import IndexStoreError
from index.recommend import Recommendations, Recommender, SimilarQuery

if TYPE_CHECKING:
    from critic.writer import Critique, Draft
    from critic.writing import Writing
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
        self._log = log
        self.store = ArtworkStore(home.store_location)
        self.cache = EmbeddingCache(home.cache_path)
        self.style = load_style_model(home.vae_dir, expect={"embedding_model": MODEL_ID})
        self.identity = self.style.index_identity
        self._lock = threading.RLock()
        self._writing_lock = threading.Lock()
        self._writing: Writing | None = None
        self.seq = self.store.last_change()  # before reading: a write racing the load is applied by refresh()
        records = self.store.all()
        latents, vectors = self.encode(records, progress=True)
        attributes = dict(zip((r.id for r in records), self.style.attributes(latents), strict=True))
        index = self._load_or_new_index(log)
        fingerprints = {r.id: r.text_hash() for r in records}
        diff = index.diff(fingerprints)
        rows = {r.id: i for i, r in enumerate(records)}
        if diff.to_encode:
            chosen = [rows[i] for i in diff.to_encode]
            index.upsert(diff.to_encode, vectors[chosen], [fingerprints[i] for i in diff.to_encode])
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
        dim = self.style.index_dim
        try:
            return VectorIndex.load(self.home.index_dir, dim=dim, identity=self.identity, mapped=True)
        except IndexStoreError as exc:
            if self.home.index_dir.exists():
                log(f"index: {exc}; rebuilding it from the store")
            return VectorIndex(dim, identity=self.identity)

    def encode(self, records: Sequence[Artwork], progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Latents (raw: the attribute heads want them so) and index vectors of records, embedded through the
        build's cache."""
        embeddings, _ = embed_texts([r.text() for r in records], self.cache, progress=progress)
        return self.style.encode(embeddings, records)

    # ------------------------------------------------------------------ asking

    def similar(self, query: SimilarQuery) -> Recommendations:
        """Artworks in the style of an id, a text, or liked and disliked examples (see SimilarQuery)."""
        return self.recommender.search(query)

    def critique(self, record: Artwork, tone: str, seed: int) -> Critique:
        """A critique of ``record`` (of the collection or not) by the build's writer."""
        return self.writing.critique(record, tone, seed)

    def describe(self, record: Artwork, seed: int) -> Draft:
        """A drafted description of ``record``, fact-checked against it."""
        return self.writing.describe(record, seed)

    @property
    def writing(self) -> Writing:
        """The writing service over this build, set up on first use (it loads the writer and learns the
        collection's lexicon)."""
        with self._writing_lock:
            if self._writing is None:
                from critic.writing import Writing  # it builds on this module

                self._writing = Writing(self)
            return self._writing

    def encode_text(self, text: str) -> np.ndarray:
        """A free-text query's unit latent vector, as the index stores artworks."""
        return self.style.index_vectors(encode_query(text)[None, :], [Artwork(id="", description=text)])[0]

    # ------------------------------------------------------------------ writing
    #
    # Every write commits to the store first (the truth), then updates this process's index. A write that is
    # committed is acknowledged even when the index update fails: the change is in the store's log, and the
    # cursor (``seq``) only moves past a change once it has been applied here, so the next refresh() applies
    # it again from the store.

    def upsert(self, records: Sequence[Artwork]) -> None:
        """Embed records, commit them to the store, then make them searchable.

        Embedded first: the embedding cache is the other file a write grows, so a full disk fails the write
        before anything is committed. Committed before indexed: the store is the truth.
        """
        with self._lock:
            encoded = self.encode(records)
            self.store.upsert_many(records)
            self._apply_own(records, encoded)

    def create(self, record: Artwork) -> Outcome:
        """Add ``record`` unless its id exists (EXISTS, nothing stored), atomically across processes."""
        with self._lock:
            encoded = self.encode([record])
            outcome = self.store.create(record)
            if outcome is Outcome.DONE:
                self._apply_own([record], encoded)
            return outcome

    def replace(self, record: Artwork, expected: Artwork) -> Outcome:
        """Store ``record`` if the stored one still equals ``expected`` (see ArtworkStore.replace)."""
        with self._lock:
            encoded = self.encode([record])
            outcome = self.store.replace(record, expected)
            if outcome is Outcome.DONE:
                self._apply_own([record], encoded)
            return outcome

    def delete(self, artwork_id: str) -> bool:
        with self._lock:
            deleted = self.store.delete(artwork_id)
            if deleted:
                self._apply_own([], None, removed=artwork_id)
            return deleted

    def refresh(self) -> int:
        """Apply writes committed to the store since the last look (by any process); returns how many.

        The cursor moves only after the changes are applied: a failure leaves them for the next call.
        """
        with self._lock:
            latest, changed = self.store.changes_since(self.seq)
            if not changed:
                return 0
            try:
                present = self.store.get_many(changed)
                for gone in set(changed) - {r.id for r in present}:
                    self.recommender.remove(gone)
                self._index_records(present)
            except Exception as exc:  # serve what is indexed; these changes are tried again next time
                self._log(f"index: {len(changed)} committed change(s) not applied yet ({exc!r})")
                return 0
            self.seq = latest
            return len(changed)

    def _apply_own(
        self, records: Sequence[Artwork], encoded: tuple[np.ndarray, np.ndarray] | None, removed: str | None = None
    ) -> None:
        """Index a write this process just committed; advance the cursor over it when nothing else came between."""
        first, last = self.store.last_written
        try:
            if removed is not None:
                self.recommender.remove(removed)
            else:
                self._index_encoded(records, encoded)
        except Exception as exc:  # committed: acknowledged, and refresh() repairs the index from the store
            self._log(f"index: a committed write was not indexed here ({exc!r}); the next refresh applies it")
            return
        if first == self.seq + 1:
            self.seq = last

    def _index_records(self, records: Sequence[Artwork]) -> None:
        if records:
            self._index_encoded(records, self.encode(records))

    def _index_encoded(self, records: Sequence[Artwork], encoded: tuple[np.ndarray, np.ndarray]) -> None:
        if not records:
            return
        latents, vectors = encoded
        attributes = self.style.attributes(latents)
        for record, vector, decoded in zip(records, vectors, attributes, strict=True):
            self.recommender.upsert(record, vector, decoded)
