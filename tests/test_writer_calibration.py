"""Attribute thresholds chosen on validation: the lowest confidence whose works agree often enough."""

from __future__ import annotations

from critic.records import Artwork
from critic.writer.calibration import calibrate_attributes


def test_threshold_and_reliability_on_a_fixture():
    # 40 works: at confidence 0.9 the model is right (baroque), at 0.7 right one time in four, at 0.3 never.
    records, attributes, confidences = [], [], []
    for i in range(40):
        conf = (0.9, 0.7, 0.3, 0.7)[i % 4]
        right = conf == 0.9 or (conf == 0.7 and i % 8 == 1)
        records.append(Artwork(id=str(i), period="Baroque" if right else "Gothic"))
        attributes.append({"period": "baroque"})
        confidences.append({"period": conf})
    out = calibrate_attributes(records, attributes, confidences, target_precision=0.8, min_support=10)
    assert out["thresholds"] == {"period": 0.9}
    bins = {b["confidence"]: (b["works"], b["agreement"]) for b in out["reliability"]["period"]}
    assert bins["0.8-1.0"] == (10, 1.0) and bins["0.6-0.8"] == (20, 0.25) and bins["0.2-0.4"] == (10, 0.0)


def test_a_label_that_never_reaches_the_target_gets_no_threshold():
    records = [Artwork(id=str(i), culture="Chinese") for i in range(30)]
    out = calibrate_attributes(records, [{"culture": "japanese"}] * 30, [{"culture": 0.99}] * 30, min_support=10)
    assert out["thresholds"] == {} and out["reliability"]["culture"][-1] == {
        "confidence": "0.8-1.0", "works": 30, "agreement": 0.0
    }  # fmt: skip
