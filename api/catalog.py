"""The records as a listing sees them: in store order, filterable, reloaded after any process wrote."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from critic.records import Artwork
from critic.store import ArtworkStore
from index.filters import FilterIndex, parse_where


class Catalog:
    """Filtered listings over a store, from an in-memory copy of its records.

    The copy is reloaded when the store's change log has moved on (one cheap query per listing), so
    writes made through any worker show up at once; listings after a write pay for one reload.

    Example:
        >>> store = ArtworkStore(":memory:")
        >>> _ = store.upsert_many([Artwork(id="1", culture="French"), Artwork(id="2", culture="Dutch")])
        >>> [r.id for r in Catalog(store).select(["culture=dutch"])]
        ['2']
    """

    def __init__(self, store: ArtworkStore):
        self.store = store
        self._lock = threading.Lock()
        self._seen: int | None = None
        self._records: list[Artwork] = []
        self._filters: FilterIndex | None = None

    def select(self, where: Sequence[str]) -> list[Artwork]:
        """The records meeting every filter expression (``index.filters`` syntax), in store order."""
        conditions = parse_where(where)
        with self._lock:  # the filter postings are built lazily and are not thread-safe
            latest = self.store.last_change()
            if latest != self._seen or self._filters is None:
                self._records = self.store.all()
                positions = {record.id: n for n, record in enumerate(self._records)}
                self._filters = FilterIndex({r.id: r for r in self._records}, positions.get)
                self._seen = latest
            allowed = self._filters.select(conditions)
            records = self._records
        # The keys are positions, sorted: the selection keeps the store's order.
        return records if allowed is None else [records[n] for n in allowed.tolist()]
