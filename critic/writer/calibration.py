"""When a decoded attribute may be stated: a confidence threshold per label, chosen on the validation split.

For each label, the threshold is the lowest confidence at which the style model's decoded value agrees with
the catalogue on at least ``target_precision`` of the validation works at or above it (with at least
``min_support`` of them). A label that never gets there has no threshold, so the critique never states it.
The reliability table (agreement per confidence bin) is kept beside the thresholds for the evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from critic.labels import label_of
from critic.records import LABEL_FIELDS, Artwork

CALIBRATION_FILE = "calibration.json"


def calibrate_attributes(
    records: Sequence[Artwork],
    attributes: Sequence[dict[str, str]],
    confidences: Sequence[dict[str, float]],
    target_precision: float = 0.8,
    min_support: int = 20,
    bins: int = 5,
) -> dict:
    """Thresholds and reliability from validation ``records`` with the style model's decoded ``attributes``
    and their ``confidences`` (label -> p).

    Example:
        >>> recs = [Artwork(id=str(i), period="Baroque" if i % 2 else "Gothic") for i in range(40)]
        >>> out = calibrate_attributes(recs, [{"period": "baroque"}] * 40,
        ...                            [{"period": 0.9 if i % 2 else 0.4} for i in range(40)], min_support=10)
        >>> out["thresholds"]["period"]
        0.9
    """
    thresholds: dict[str, float] = {}
    reliability: dict[str, list[dict]] = {}
    for name in LABEL_FIELDS:
        rows = [
            (c[name], a.get(name, "").lower() == label_of(r, name))
            for r, a, c in zip(records, attributes, confidences, strict=True)
            if label_of(r, name) and name in c and a.get(name)
        ]
        if not rows:
            continue
        conf = np.array([p for p, _ in rows])
        right = np.array([ok for _, ok in rows], dtype=float)
        order = np.argsort(-conf, kind="stable")
        # Agreement among the works at or above each confidence, from the most confident down.
        running = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
        ranked = conf[order]
        # Only where a confidence ends (ties included), so "at or above t" means every work with t.
        ends = [i for i in range(len(order)) if i == len(order) - 1 or ranked[i + 1] < ranked[i]]
        passing = [i for i in ends if i >= min_support - 1 and running[i] >= target_precision]
        if passing:
            thresholds[name] = round(float(ranked[max(passing)]), 4)
        edges = np.linspace(0, 1, bins + 1)
        reliability[name] = [
            {
                "confidence": f"{lo:.1f}-{hi:.1f}",
                "works": int(mask.sum()),
                "agreement": round(float(right[mask].mean()), 3) if mask.any() else None,
            }
            for lo, hi in zip(edges, edges[1:], strict=False)
            for mask in [(conf >= lo) & ((conf < hi) if hi < 1 else (conf <= hi))]
        ]
    return {"target_precision": target_precision, "thresholds": thresholds, "reliability": reliability}
