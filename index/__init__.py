"""The FAISS store over style latents and the recommenders built on it (docs/design.md, "The index and the
recommender")."""

from index.errors import (
    FilterError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    IndexStoreError,
    QueryError,
    UnknownArtworkError,
)
from index.filters import Condition, FilterIndex, parse_where
from index.recommend import Recommendation, Recommendations, Recommender, SimilarQuery
from index.store import IndexDiff, VectorIndex

__all__ = [
    "Condition",
    "FilterError",
    "FilterIndex",
    "IndexCorruptError",
    "IndexDiff",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexStoreError",
    "QueryError",
    "Recommendation",
    "Recommendations",
    "Recommender",
    "SimilarQuery",
    "UnknownArtworkError",
    "VectorIndex",
    "parse_where",
]
