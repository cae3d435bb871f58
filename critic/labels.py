"""Label vocabularies for the VAE's attribute heads: record fields <-> class indices."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from critic.records import LABEL_FIELDS, Artwork


def label_of(record: Artwork, name: str) -> str:
    """The normalised label a record carries for ``name`` ("" when missing).

    Multi-valued catalog entries such as "illuminated manuscripts; folios (leaves)" keep their first term,
    so that spelling variants of the same kind of object share a class.
    """
    value = getattr(record, name) or ""
    return value.split(";")[0].strip().lower()


@dataclass
class LabelVocab:
    """Classes per label (those seen ``min_count`` times in training) and the keyword vocabulary."""

    classes: dict[str, list[str]]
    keywords: list[str]

    @classmethod
    def fit(cls, records: Sequence[Artwork], min_count: int = 5, max_keywords: int = 256) -> LabelVocab:
        classes = {}
        for name in LABEL_FIELDS:
            counts = Counter(label_of(r, name) for r in records)
            counts.pop("", None)
            kept = sorted(k for k, n in counts.items() if n >= min_count)
            if len(kept) >= 2:  # a head with one class learns nothing
                classes[name] = kept
        keyword_counts = Counter(k.strip().lower() for r in records for k in r.keywords if k.strip())
        keywords = sorted(k for k, n in keyword_counts.most_common(max_keywords) if n >= min_count)
        return cls(classes=classes, keywords=keywords)

    def encode(self, records: Sequence[Artwork]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Class indices per label (-1 = missing or rare) and a multi-hot keyword matrix."""
        labels = {}
        for name, names in self.classes.items():
            index = {c: i for i, c in enumerate(names)}
            labels[name] = np.array([index.get(label_of(r, name), -1) for r in records], dtype=np.int64)
        kw_index = {k: i for i, k in enumerate(self.keywords)}
        multi_hot = np.zeros((len(records), len(self.keywords)), dtype=np.float32)
        for row, record in enumerate(records):
            for k in record.keywords:
                if (col := kw_index.get(k.strip().lower())) is not None:
                    multi_hot[row, col] = 1.0
        return labels, multi_hot

    def to_json(self) -> dict:
        return {"classes": self.classes, "keywords": self.keywords}

    @classmethod
    def from_json(cls, data: dict) -> LabelVocab:
        return cls(classes={k: list(v) for k, v in data["classes"].items()}, keywords=list(data["keywords"]))
