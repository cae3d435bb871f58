"""The writing service: critic.writer grounded in the loaded Service, for the API routes and the CLI alike.

The drafter is retrieve-and-edit ranked by the trained decoder when the home holds one (``<home>/writer``,
trained by `critic build` or `critic train writer`, with its fluency gate and attribute calibration beside
it); without one it ranks by similarity alone and the evidence names the drafter, so no response hides which
one wrote. Drafts are only needed for works without a description of their own.

Bounded by design: embeddings of texts the build did not store (drafts, new artworks) live in an in-memory
LRU and never reach the persistent cache; finished critiques are kept in an LRU of ``CACHE_SIZE`` keyed by
(id, record version, tone, seed, writer version); the collection's lexicon and numbers are rebuilt in the
background after the store changes, so creators added later are known to the fact check.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from critic.embed import MODEL_ID, memory_embedder
from critic.records import Artwork, text_hash
from critic.service import Service
from critic.split import three_way_split
from critic.writer import (
    CollectionStats,
    Critique,
    CritiqueWriter,
    Draft,
    Grounding,
    Lexicon,
    Neighbour,
    NgramModel,
    Section,
    WriterModelError,
    build_lexicon,
    default_drafter,
    load_writer,
)
from critic.writer.calibration import CALIBRATION_FILE, calibrate_attributes
from critic.writer.collection import CLOSENESS_K
from critic.writer.fluency import FLUENCY_FILE, fit_fluency
from critic.writer.grounding import attribute_confidences

NEIGHBOURS = 8  # candidates for comparisons, observations and drafting; the critique shows three
CACHE_SIZE = 1024
CLOSENESS_PROBES = 300
log = logging.getLogger(__name__)


@dataclass
class _State:
    """What the writer knows of the collection at one store version."""

    seq: int
    lexicon: Lexicon
    writer: CritiqueWriter
    version: str


class Writing:
    """Writes for artworks of the service's collection, or for new ones given as records.

    Example:
        >>> writing = Writing(Service.load(Home.resolve()))                     # doctest: +SKIP
        >>> writing.critique(writing.service.store.get("37"), "label", seed=0).text  # doctest: +SKIP
    """

    def __init__(self, service: Service, cache_size: int = CACHE_SIZE):
        self.service = service
        self._embed = memory_embedder(service.cache)
        self._model = None
        self._model_id = "none"
        if service.home.writer_dir.exists():
            try:
                self._model = load_writer(
                    service.home.writer_dir, latent_dim=service.style.latent_dim, embedding_model=MODEL_ID
                )
                self._model_id = self._model.config.provenance.get("identity", "unknown")[:16]
            except WriterModelError as exc:
                # A damaged or stale writer must not take critiques down: drafts are ranked by similarity alone
                # (the evidence names the drafter) until `critic train writer` replaces it.
                log.warning("writer unusable, drafting without the decoder: %s", exc)
        self._gates_loaded = False
        self._fluency: NgramModel | None = None
        self._thresholds: dict[str, float] = {}
        self._cache: OrderedDict[tuple, dict] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._rebuilding: threading.Thread | None = None
        self._state = self._build_state()

    # ------------------------------------------------------------------ state
    def _gates(self, records: list[Artwork], lexicon: Lexicon) -> None:
        """The fluency gate and attribute thresholds saved beside the writer, or made now from the collection's
        fit and validation sides (slow, once per process) when the home has none."""
        if self._gates_loaded:
            return
        directory = self.service.home.writer_dir
        try:
            self._fluency = NgramModel.load(directory / FLUENCY_FILE)
            self._thresholds = json.loads((directory / CALIBRATION_FILE).read_text())["thresholds"]
        except (OSError, ValueError, KeyError):
            log.warning("no fluency gate or calibration in %s: fitting them from the collection", directory)
            split = three_way_split(records)
            by_id = {r.id: r for r in records}
            self._fluency = fit_fluency([by_id[i] for i in split.fit], [by_id[i] for i in split.validation], lexicon)
            self._thresholds = self._calibrate([by_id[i] for i in split.validation])
        self._gates_loaded = True

    def _calibrate(self, validation: list[Artwork]) -> dict[str, float]:
        style = self.service.style
        latents = style.latents(self._embed([r.text() for r in validation]), validation)
        found = calibrate_attributes(validation, style.attributes(latents), attribute_confidences(style, latents))
        return found["thresholds"]

    def _closeness(self, records: list[Artwork]) -> list[float]:
        """Mean similarity of a seeded sample of works to their nearest neighbours (what 'typical' means)."""
        index = self.service.recommender.index
        probes = random.Random(0).sample([r.id for r in records], min(CLOSENESS_PROBES, len(records)))
        out = []
        for artwork_id, vector in zip(probes, index.vectors(probes), strict=True):
            hits = index.search(vector, CLOSENESS_K, exclude={artwork_id})
            if hits:
                out.append(float(np.mean([score for _, score in hits])))
        return out

    def _build_state(self) -> _State:
        seq = self.service.store.last_change()
        records = self.service.store.all()
        # The fact check knows every creator of the collection, not only the writer's train split.
        lexicon = build_lexicon(records)
        self._gates(records, lexicon)
        drafter = default_drafter(self._model, self._embed, lexicon, self._fluency)
        stats = CollectionStats.build(records, lexicon, self._closeness(records))
        writer = CritiqueWriter(drafter, lexicon, stats, self._thresholds)
        return _State(seq, lexicon, writer, f"{drafter.name}:{self._model_id}:{seq}")

    def _rebuild(self) -> None:
        try:
            state = self._build_state()
            with self._lock:
                self._state = state
        finally:
            self._rebuilding = None

    def refresh(self, wait: bool = False) -> None:
        """Relearn the collection (lexicon, numbers) if the store changed since; in the background unless
        ``wait``. Requests meanwhile use the previous state."""
        if self.service.store.last_change() == self._state.seq:
            return
        if wait:
            self._rebuild()
            return
        with self._lock:
            if self._rebuilding is None:
                self._rebuilding = threading.Thread(target=self._rebuild, name="writing-refresh", daemon=True)
                self._rebuilding.start()

    @property
    def writer(self) -> CritiqueWriter:
        return self._state.writer

    @property
    def lexicon(self) -> Lexicon:
        return self._state.lexicon

    # ------------------------------------------------------------------ writing
    def ground(self, record: Artwork) -> Grounding:
        """What the writer knows of ``record``: its embedding, style latent, decoded attributes with their
        confidences, and its nearest neighbours."""
        style = self.service.style
        embedding = self._embed([record.text()])[0]
        latent, vector = style.encode(embedding[None, :], [record])
        hits = self.service.recommender.index.search(vector[0], NEIGHBOURS + 1, exclude={record.id})
        found = [(self.service.store.get(i), score) for i, score in hits]
        neighbours = [Neighbour(other, score) for other, score in found if other is not None][:NEIGHBOURS]
        confidences = attribute_confidences(style, latent)[0]
        return Grounding(record, embedding, latent[0], style.attributes(latent)[0], neighbours, confidences)

    def critique(self, record: Artwork, tone: str, seed: int) -> Critique:
        """A critique, from the cache when the same record version, tone, seed and writer asked before."""
        self.refresh()
        state = self._state
        version = text_hash(json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False))
        key = (record.id, version, tone, seed, state.version)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return _critique_from_json(self._cache[key])
        result = state.writer.critique(self.ground(record), tone=tone, seed=seed)
        with self._lock:
            self._cache[key] = result.to_json()
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def cached(self) -> int:
        """How many finished critiques the cache holds."""
        return len(self._cache)

    def describe(self, record: Artwork, seed: int) -> Draft:
        """A drafted description (its evidence says when the record already has one of its own)."""
        self.refresh()
        return self._state.writer.describe(self.ground(record), seed=seed)


def _critique_from_json(data: dict) -> Critique:
    sections = [Section(s["title"], s["text"]) for s in data["sections"]]
    return Critique(data["id"], data["tone"], sections, json.loads(json.dumps(data["evidence"])))
