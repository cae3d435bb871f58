"""The fluency gate: a Kneser-Ney trigram model whose probabilities sum to one, SLOR that falls when word order
breaks, a threshold calibrated on held-out sentences, and a file that loads to the same model."""

from __future__ import annotations

import math

import pytest

from critic.writer.fluency import NgramModel, lm_tokens

SENTENCES = [
    "The bowl is made of bronze.",
    "The cup is made of silver.",
    "The panel is painted in tempera.",
    "The bowl was cast in bronze.",
    "The cup was raised from silver.",
] * 3


@pytest.fixture(scope="module")
def model():
    return NgramModel.fit(SENTENCES, min_count=1)


def test_probabilities_sum_to_one_in_every_context(model):
    index = model._index
    for context in [("<s>", "<s>"), ("the", "bowl"), ("is", "made"), ("bronze", "never-seen")]:
        a, b = (index.get(t, 2) for t in context)
        assert sum(model._prob(a, b, c) for c in range(len(model.vocab))) == pytest.approx(1.0)


def test_a_seen_sentence_is_likelier_than_its_shuffle(model):
    assert model.perplexity("The bowl is made of bronze.") < model.perplexity("Bronze of made is bowl the.")
    assert model.slor("The bowl is made of bronze.") > 0 > model.slor("Bronze of made is bowl the.")


def test_the_threshold_is_the_held_out_quantile(model):
    held_out = ["The bowl is made of silver.", "The cup was cast in bronze.", "Silver cup the of made."]
    threshold = model.calibrate(held_out, quantile=2 / 3)
    scores = sorted(model.slor(s) for s in held_out)
    assert threshold == pytest.approx(scores[0] + (scores[1] - scores[0]) * (2 - 2 * 2 / 3))
    assert [model.fluent(s) for s in held_out] == [True, True, False]


def test_tokens_fold_case_and_digits_and_keep_slots():
    assert lm_tokens("<CREATOR> Painted it in 1837.") == ["<CREATOR>", "painted", "it", "in", "0000", "."]


def test_saved_model_loads_identically(model, tmp_path):
    model.calibrate(SENTENCES, 0.9)
    model.save(tmp_path / "fluency.npz")
    loaded = NgramModel.load(tmp_path / "fluency.npz")
    assert loaded.threshold == model.threshold and loaded.vocab == model.vocab
    assert loaded.slor("The cup is painted in bronze.") == model.slor("The cup is painted in bronze.")
    assert math.isfinite(loaded.perplexity("An unseen sentence entirely."))
