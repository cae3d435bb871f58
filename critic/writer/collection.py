"""What the critique knows of the whole collection: how common each label and material is, the years each
period spans, and how close works usually sit to their nearest neighbours.

The assessment states numbers from here (rarity, typicality, where a date falls), and the style section
refuses a decoded period whose years in the collection exclude the record's own dates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from critic.labels import label_of
from critic.records import Artwork
from critic.writer.lexicon import Lexicon

COUNTED = ("period", "style", "culture", "classification", "object_type")
#: How many nearest neighbours' mean similarity measures how typical a work is (critique and sample alike).
CLOSENESS_K = 3


@dataclass
class CollectionStats:
    """Counts per label value and material, period year spans, and a sample of neighbour closeness."""

    total: int
    counts: dict[str, Counter[str]]
    materials: Counter[str]
    period_years: dict[str, tuple[int, int]]
    closeness: np.ndarray = field(default_factory=lambda: np.zeros(0))  # sorted mean top-k neighbour scores

    @classmethod
    def build(cls, records: Iterable[Artwork], lexicon: Lexicon, closeness: Sequence[float] = ()) -> CollectionStats:
        """Stats of ``records``; ``closeness`` is the mean similarity of a sample of works to their nearest
        neighbours (the same k and index the critiques use).

        Example:
            >>> from critic.writer.lexicon import Lexicon
            >>> stats = CollectionStats.build([Artwork(id="1", period="Baroque", year_start=1650, year_end=1660)],
            ...                               Lexicon(frozenset(), frozenset(), frozenset()))
            >>> stats.counts["period"]["baroque"], stats.period_years["baroque"]
            (1, (1650, 1660))
        """
        records = list(records)
        counts = {name: Counter(label_of(r, name) for r in records if label_of(r, name)) for name in COUNTED}
        materials = Counter(m for r in records for m in dict.fromkeys(lexicon.materials_of(r.medium)))
        years: dict[str, list[tuple[int, int]]] = {}
        for r in records:
            period = label_of(r, "period")
            if period and r.year_start is not None and r.year_end is not None:
                years.setdefault(period, []).append((min(r.year_start, r.year_end), max(r.year_start, r.year_end)))
        # The 2nd and 98th percentiles, so one misdated record does not stretch a period over centuries.
        spans = {
            p: (int(np.percentile([a for a, _ in v], 2)), int(np.percentile([b for _, b in v], 98)))
            for p, v in years.items()
        }
        return cls(len(records), counts, materials, spans, np.sort(np.asarray(closeness, dtype=np.float64)))

    def share(self, name: str, value: str) -> tuple[int, float]:
        """(how many works carry ``value`` for label ``name``, their share of the collection)."""
        n = self.counts.get(name, Counter()).get(value, 0)
        return n, n / max(self.total, 1)

    def closeness_percentile(self, score: float) -> float | None:
        """Share of sampled works whose neighbours sit less close than ``score`` (None without a sample)."""
        if not len(self.closeness):
            return None
        return float(np.searchsorted(self.closeness, score)) / len(self.closeness)

    def period_excludes(self, period: str, record: Artwork, slack: int = 25) -> bool:
        """Whether the collection's years for ``period`` exclude the record's own dates."""
        span = self.period_years.get(period)
        if span is None or record.year_start is None or record.year_end is None:
            return False
        lo, hi = sorted((record.year_start, record.year_end))
        return hi < span[0] - slack or lo > span[1] + slack
