"""The records as a listing sees them: in store order, filterable, kept current with every process's writes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

from critic.records import Artwork
from critic.store import ArtworkStore
from index.filters import FilterIndex, parse_where


class Catalog:
    """Filtered listings and value counts over a store, from an in-memory copy of its records.

    The copy is loaded once, then follows the store's change log (one cheap query per listing): a write
    made through any worker shows up at once and costs the copy only the records it changed.

    Example:
        >>> store = ArtworkStore(":memory:")
        >>> _ = store.upsert_many([Artwork(id="1", culture="French"), Artwork(id="2", culture="Dutch")])
        >>> [r.id for r in Catalog(store).select(["culture=dutch"])]
        ['2']
    """

    def __init__(self, store: ArtworkStore, counted: Sequence[str] = ()):
        self.store = store
        self.counted = tuple(counted)
        self._lock = threading.Lock()
        self._seen: int | None = None
        self._records: dict[str, Artwork] = {}
        # A record's place in store order: the store appends new rows, so a new record goes last.
        self._position: dict[str, int] = {}
        self._at: dict[int, Artwork] = {}
        self._next = 0
        self._ordered: list[Artwork] | None = None
        self._filters = FilterIndex(self._records, self._position.get)
        self._counts: dict[str, Counter[str]] = {name: Counter() for name in self.counted}

    def select(self, where: Sequence[str]) -> list[Artwork]:
        """The records meeting every filter expression (``index.filters`` syntax), in store order."""
        conditions = parse_where(where)
        with self._lock:
            self._catch_up()
            if not conditions:
                if self._ordered is None:
                    self._ordered = [self._at[n] for n in sorted(self._at)]
                return self._ordered
            at = self._at
        # Outside the lock (filters may take a while): a record removed meanwhile is simply left out.
        allowed = self._filters.select(conditions)
        return [record for record in (at.get(n) for n in allowed.tolist()) if record is not None]

    def counts(self, name: str) -> Counter[str]:
        """How many records hold each non-empty value of the counted field ``name`` (a copy)."""
        with self._lock:
            self._catch_up()
            return Counter(self._counts[name])

    def _catch_up(self) -> None:
        if self._seen is None:
            self._seen = self.store.last_change()  # before reading: a write racing the load is caught up later
            for record in self.store.all():
                self._apply(None, record)
            return
        latest, changed = self.store.changes_since(self._seen)
        if changed:
            self._at = dict(self._at)  # a selection running outside the lock keeps the mapping it took
        for artwork_id in changed:
            self._apply(self._records.get(artwork_id), self.store.get(artwork_id))
        self._seen = latest

    def _apply(self, old: Artwork | None, new: Artwork | None) -> None:
        if old is None and new is None:
            return
        self._ordered = None
        for name in self.counted:
            for record, step in ((old, -1), (new, 1)):
                value = getattr(record, name).strip() if record is not None else ""
                if value:
                    self._counts[name][value] += step
            self._counts[name] = +self._counts[name]
        if new is None:
            self._filters.update(old, None)  # while its position is still known
            self._records.pop(old.id)
            del self._at[self._position.pop(old.id)]
            return
        if new.id not in self._position:
            self._position[new.id] = self._next
            self._next += 1
        self._records[new.id] = new
        self._at[self._position[new.id]] = new
        self._filters.update(old, new)
