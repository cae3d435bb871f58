"""Style-similar recommendations: similar to an artwork, to a text, or to liked and disliked examples.

Filters and exclusions act inside the vector search, results can be diversified with MMR, pages are stable,
and each result says why it came up. Liked and disliked examples follow the average-vector strategy
(Rocchio, as Qdrant's ``average_vector``): the query is the weighted mean of the liked vectors minus
``dislike_weight`` times the weighted mean of the disliked ones. It costs one index search, so filters and
pagination behave exactly as for a single artwork; the best-score strategy would need a search per example.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import numpy as np

from critic.records import Artwork, fold_case
from index.errors import IndexMismatchError, QueryError, UnknownArtworkError
from index.explain import explain
from index.filters import Condition, FilterIndex, parse_where
from index.mmr import MIN_POOL, POOL_STEP, mmr_order, pool_size
from index.store import VectorIndex

#: offset + k may not exceed this: deeper pages cost a pool of 4 candidates per result.
MAX_DEPTH = 1000
DEFAULT_DISLIKE_WEIGHT = 0.5

Where = Sequence[Condition] | Iterable[str] | Mapping[str, Any]


@dataclass(frozen=True)
class SimilarQuery:
    """One recommendation request. Give exactly one of ``id``, ``text`` and ``like``; ``unlike`` may join any.

    ``like``/``unlike`` take ids (weight 1 each) or ``{id: weight}``. ``where`` takes parsed conditions,
    expressions or a mapping (see ``index.filters``). ``diversity`` is 1 - MMR lambda; 0 ranks by similarity.
    ``exclude_same_creator`` leaves out works by any creator of the query's examples ("more like this by other
    artists"); ``max_per_creator`` keeps at most that many results per creator, best first, on every page.
    """

    id: str | None = None
    text: str | None = None
    like: Mapping[str, float] | Sequence[str] = ()
    unlike: Mapping[str, float] | Sequence[str] = ()
    k: int = 10
    offset: int = 0
    where: Where = ()
    exclude: Sequence[str] = ()
    diversity: float = 0.0
    min_score: float | None = None
    exclude_same_creator: bool = False
    max_per_creator: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the inputs once, here
        set_(self, "like", _weights("like", self.like))
        set_(self, "unlike", _weights("unlike", self.unlike))
        given = [name for name in ("id", "text", "like") if getattr(self, name)]
        if len(given) != 1:
            raise QueryError("give exactly one of id, text and like" + (f" (got {', '.join(given)})" if given else ""))
        if self.text is not None and not self.text.strip():
            raise QueryError("text query is empty")
        if not isinstance(self.k, int) or self.k < 1 or not isinstance(self.offset, int) or self.offset < 0:
            raise QueryError(f"k must be >= 1 and offset >= 0, got k={self.k}, offset={self.offset}")
        if self.offset + self.k > MAX_DEPTH:
            raise QueryError(f"offset + k may not exceed {MAX_DEPTH}, got {self.offset + self.k}")
        if not 0.0 <= self.diversity <= 1.0:
            raise QueryError(f"diversity must lie in 0..1, got {self.diversity}")
        if self.min_score is not None and not -1.0 <= self.min_score <= 1.0:
            raise QueryError(f"min_score must lie in -1..1, got {self.min_score}")
        cap = self.max_per_creator
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise QueryError(f"max_per_creator must be a whole number >= 1, got {self.max_per_creator!r}")
        where = self.where if isinstance(self.where, Mapping | str) else tuple(self.where)
        if not (isinstance(where, tuple) and all(isinstance(c, Condition) for c in where)):
            where = parse_where(where)
        set_(self, "where", where)
        set_(self, "exclude", tuple(dict.fromkeys(self.exclude)))

    def to_json(self) -> dict[str, Any]:
        """What was asked, in the shape of the API body: only the query source that was given."""
        asked: dict[str, Any] = {}
        if self.id is not None:
            asked["id"] = self.id
        if self.text is not None:
            asked["text"] = self.text
        for name in ("like", "unlike"):
            weights = getattr(self, name)
            if weights:
                asked[name] = list(weights) if set(weights.values()) == {1.0} else dict(weights)
        return {
            **asked,
            "k": self.k,
            "offset": self.offset,
            "where": [str(c) for c in self.where],
            "exclude": list(self.exclude),
            "diversity": self.diversity,
            "min_score": self.min_score,
            "exclude_same_creator": self.exclude_same_creator,
            "max_per_creator": self.max_per_creator,
        }


class SearchOptions(TypedDict, total=False):
    """The options every recommendation method takes, as in SimilarQuery."""

    unlike: Mapping[str, float] | Sequence[str]
    k: int
    offset: int
    where: Where
    exclude: Sequence[str]
    diversity: float
    min_score: float | None
    exclude_same_creator: bool
    max_per_creator: int | None


@dataclass(frozen=True)
class Recommendation:
    id: str
    score: float
    title: str
    creators: list[str]
    why: list[str]
    #: What a widget needs to show a card without fetching each record.
    image_url: str = ""
    url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": round(self.score, 4),
            "title": self.title,
            "creators": list(self.creators),
            "why": list(self.why),
            "image_url": self.image_url,
            "url": self.url,
        }


@dataclass(frozen=True)
class Recommendations:
    query: SimilarQuery
    results: list[Recommendation] = field(default_factory=list)
    next_offset: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict shared by the CLI's ``--json`` and the API:
        ``{"query": {...}, "results": [{"id", "score", "title", "creators", "why"}], "next_offset"}``."""
        return {
            "query": self.query.to_json(),
            "results": [r.to_json() for r in self.results],
            "next_offset": self.next_offset,
        }


class Recommender:
    """Recommendations over a VectorIndex and the records it was built from.

    ``records`` must hold every indexed id (more is fine: those are simply not recommendable yet); the
    recommender keeps its own view of them, so change them through ``upsert`` and ``remove``.
    ``encode_text`` maps a free text to a latent vector (MiniLM then the VAE encoder's mean); without it
    text queries raise QueryError. ``attributes`` maps ids to decoded labels (``{"period": ...}``) used
    in the explanations.

    Example (with an index and its records at hand)::

        recommender = Recommender(index, records, encode_text=encoder, attributes=decoded)
        recommender.similar("37", k=5, where=["period=Renaissance"], diversity=0.3).to_json()
    """

    def __init__(
        self,
        index: VectorIndex,
        records: Mapping[str, Artwork],
        encode_text: Callable[[str], np.ndarray] | None = None,
        attributes: Mapping[str, Mapping[str, str]] | None = None,
        *,
        dislike_weight: float = DEFAULT_DISLIKE_WEIGHT,
        min_pool: int = MIN_POOL,
        pool_step: int = POOL_STEP,
    ):
        self.index = index
        self.encode_text = encode_text
        self.dislike_weight = dislike_weight
        self.min_pool = min_pool
        self.pool_step = pool_step
        self._records: dict[str, Artwork] = dict(records)
        self._attributes: dict[str, Mapping[str, str]] = dict(attributes or {})
        orphans = [i for i in index.ids() if i not in self._records]
        if orphans:
            raise IndexMismatchError(
                f"the index holds {len(orphans)} ids without a record (e.g. {orphans[0]!r}); rebuild it"
            )
        self._filters = FilterIndex(self._records, index.key_of)
        self._same_text: dict[str, set[str]] | None = None  # text hash -> ids, built on first use
        self._by_creator: dict[str, set[str]] | None = None  # case-folded creator -> ids, built on first use
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ asking

    def similar(self, artwork_id: str, **options: Unpack[SearchOptions]) -> Recommendations:
        """Artworks in the style of ``artwork_id`` (itself and exact-duplicate texts excluded)."""
        return self.search(SimilarQuery(id=artwork_id, **options))

    def similar_to_text(self, text: str, **options: Unpack[SearchOptions]) -> Recommendations:
        """Artworks that match a free-text description, through ``encode_text``."""
        return self.search(SimilarQuery(text=text, **options))

    def recommend(self, like: Mapping[str, float] | Sequence[str], **options: Unpack[SearchOptions]) -> Recommendations:
        """Artworks like the ``like`` examples and unlike ``unlike`` (both ids, or ids with weights)."""
        return self.search(SimilarQuery(like=like, **options))

    def search(self, query: SimilarQuery) -> Recommendations:
        """Answer a SimilarQuery: the page ``offset .. offset + k`` of its ranking, explained."""
        # Encoding a text takes tens of milliseconds and a substring filter up to a few hundred: both run
        # before taking the lock, so a costly query never holds up the others or a refresh.
        encoded = self._encode(query.text) if query.text is not None else None
        allowed = self._filters.select(query.where)
        with self._lock:
            vector, examples = self._query_vector(query, encoded)
            excluded = set(query.exclude) | set(examples) | self._same_texts(examples)
            if query.exclude_same_creator:
                excluded |= self._by_creators_of(examples)
            depth = query.offset + query.k + 1  # one more than the page tells whether a next page exists
            pooled = query.diversity or query.max_per_creator
            wanted = pool_size(depth, self.min_pool, self.pool_step) if pooled else depth
            hits = self.index.search(vector, wanted, allow=allowed, exclude=excluded)
            if query.min_score is not None:
                hits = [hit for hit in hits if hit[1] >= query.min_score]
            if query.diversity:
                order = mmr_order(
                    np.array([score for _, score in hits]),
                    self.index.vectors([i for i, _ in hits]),
                    depth,
                    query.diversity,
                    min_pool=self.min_pool,
                    pool_step=self.pool_step,
                )
                hits = [hits[n] for n in order]
            if query.max_per_creator:
                hits = self._capped(hits, query.max_per_creator)
            page = hits[query.offset : query.offset + query.k]
            more = len(hits) > query.offset + query.k
            return Recommendations(
                query=query,
                results=[self._explained(i, score, query, examples) for i, score in page],
                next_offset=query.offset + query.k if more else None,
            )

    # ---------------------------------------------------------------- changing

    def upsert(
        self,
        record: Artwork,
        vector: np.ndarray,
        attributes: Mapping[str, str] | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """Add or replace one artwork: its record, its latent vector and its decoded attributes.

        ``fingerprint`` (stored in the index, see VectorIndex.diff) defaults to the record's text hash.
        """
        with self._lock:
            self.index.upsert([record.id], np.asarray(vector).reshape(1, -1), [fingerprint or record.text_hash()])
            old = self._records.get(record.id)
            self._forget_text(old)
            self._records[record.id] = record
            self._filters.update(old, record)
            if self._same_text is not None:
                self._same_text.setdefault(record.text_hash(), set()).add(record.id)
            if self._by_creator is not None:
                self._index_creators(record)
            if attributes is not None:
                self._attributes[record.id] = dict(attributes)
            else:
                self._attributes.pop(record.id, None)

    def remove(self, artwork_id: str) -> bool:
        """Remove an artwork from the index and the recommender's records; False if it was unknown."""
        with self._lock:
            old = self._records.pop(artwork_id, None)
            self._filters.update(old, None)  # while the index still knows the key
            removed = self.index.remove([artwork_id]) > 0
            self._forget_text(old)
            self._attributes.pop(artwork_id, None)
            return old is not None or removed

    # ----------------------------------------------------------------- private

    def _encode(self, text: str) -> np.ndarray:
        if self.encode_text is None:
            raise QueryError("text queries need a text encoder, and this recommender has none")
        vector = np.asarray(self.encode_text(text), dtype=np.float32).reshape(-1)
        if vector.shape != (self.index.dim,):
            raise QueryError(f"the text encoder gave shape {vector.shape}, expected ({self.index.dim},)")
        return vector

    def _query_vector(
        self, query: SimilarQuery, encoded: np.ndarray | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The query vector and the vectors of the example artworks it came from (by id)."""
        like = {query.id: 1.0} if query.id is not None else dict(query.like)
        unlike = dict(query.unlike)
        examples = {i: self._vector_of(i) for i in [*like, *unlike]}
        positive = encoded if encoded is not None else _weighted_mean(like, examples)
        vector = positive
        if unlike:
            vector = positive - self.dislike_weight * _weighted_mean(unlike, examples)
        if not np.isfinite(vector).all() or np.linalg.norm(vector) < 1e-6:
            raise QueryError("the liked and disliked examples cancel out; there is no direction to search")
        return vector, examples

    def _vector_of(self, artwork_id: str) -> np.ndarray:
        if artwork_id not in self._records:
            raise UnknownArtworkError(f"unknown artwork id {artwork_id!r}")
        if artwork_id not in self.index:
            raise UnknownArtworkError(f"artwork {artwork_id!r} is not in the index yet")
        return self.index.vector(artwork_id)

    def _same_texts(self, ids: Iterable[str]) -> set[str]:
        if self._same_text is None:
            self._same_text = {}
            for record in self._records.values():
                self._same_text.setdefault(record.text_hash(), set()).add(record.id)
        return set().union(*(self._same_text.get(self._records[i].text_hash(), ()) for i in ids))

    def _by_creators_of(self, ids: Iterable[str]) -> set[str]:
        """Every artwork sharing a creator with one of ``ids``."""
        if self._by_creator is None:
            self._by_creator = {}
            for record in self._records.values():
                self._index_creators(record)
        names = {name for i in ids for name in _creator_keys(self._records[i])}
        return set().union(*(self._by_creator.get(name, ()) for name in names))

    def _index_creators(self, record: Artwork) -> None:
        for name in _creator_keys(record):
            self._by_creator.setdefault(name, set()).add(record.id)

    def _capped(self, hits: list[tuple[str, float]], cap: int) -> list[tuple[str, float]]:
        """Hits in order, skipping any whose creators already have ``cap`` results above it."""
        seen: dict[str, int] = {}
        kept = []
        for hit in hits:
            names = _creator_keys(self._records[hit[0]])
            if all(seen.get(n, 0) < cap for n in names):
                kept.append(hit)
                for n in names:
                    seen[n] = seen.get(n, 0) + 1
        return kept

    def _forget_text(self, record: Artwork | None) -> None:
        if record is not None and self._same_text is not None:
            self._same_text.get(record.text_hash(), set()).discard(record.id)
        if record is not None and self._by_creator is not None:
            for name in _creator_keys(record):
                self._by_creator.get(name, set()).discard(record.id)

    def _explained(
        self, artwork_id: str, score: float, query: SimilarQuery, examples: Mapping[str, np.ndarray]
    ) -> Recommendation:
        record = self._records[artwork_id]
        liked = list(query.like) or ([query.id] if query.id else [])
        reference_id = None
        if liked:
            # Explain against the liked example closest to this result.
            found = self.index.vector(artwork_id)
            reference_id = liked[int(np.argmax([examples[i] @ found for i in liked]))]
        why = explain(
            record,
            score,
            reference=self._records[reference_id] if reference_id else None,
            result_attributes=self._attributes.get(artwork_id),
            reference_attributes=self._attributes.get(reference_id) if reference_id else None,
            query_text=query.text,
        )
        if query.like and reference_id:
            title = self._records[reference_id].title
            why.insert(1, f"closest liked artwork: {reference_id}" + (f" ({title})" if title else ""))
        return Recommendation(
            artwork_id, score, record.title, list(record.creators), why, record.image_url, record.url
        )


def _creator_keys(record: Artwork) -> set[str]:
    return {key for key in (fold_case(name) for name in record.creators) if key}


def _weights(name: str, given: Mapping[str, float] | Sequence[str]) -> dict[str, float]:
    if isinstance(given, str):
        raise QueryError(f"{name} takes a list of ids or an {{id: weight}} mapping, not a string")
    weights = dict(given) if isinstance(given, Mapping) else dict.fromkeys(given, 1.0)
    for artwork_id, weight in weights.items():
        if not isinstance(weight, int | float) or not weight > 0 or weight == float("inf"):
            raise QueryError(f"{name} weight of {artwork_id!r} must be a positive number, got {weight!r}")
    return {str(i): float(w) for i, w in weights.items()}


def _weighted_mean(weights: Mapping[str, float], vectors: Mapping[str, np.ndarray]) -> np.ndarray:
    total = sum(weights.values())
    return sum((w / total) * vectors[i] for i, w in weights.items())
