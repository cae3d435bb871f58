"""Exceptions of the index package; each message is one line a CLI can print as is."""

from __future__ import annotations


class IndexStoreError(Exception):
    """Base of every vector-index failure; catch it to rebuild the index from the stored records."""


class IndexMissingError(IndexStoreError):
    """No saved index at the path (never built, or removed)."""


class IndexCorruptError(IndexStoreError):
    """A saved index file is missing, truncated or fails its checksum."""


class IndexMismatchError(IndexStoreError):
    """A saved index was built for another model, dimension or identity than the caller expects."""


class FilterError(ValueError):
    """A filter expression names an unknown field or has bad syntax."""


class UnknownArtworkError(KeyError):
    """An artwork id that the records or the index do not hold."""

    def __str__(self) -> str:
        # KeyError's own str() wraps the message in quotes; keep it one plain line.
        return str(self.args[0]) if self.args else "unknown artwork"


class QueryError(ValueError):
    """A recommendation request that cannot be answered as asked (no query, bad k, no text encoder...)."""
