"""Writing metrics, the drafting protocol and the critique measures on a tiny split."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from test_writer_support import tiny_writer

from critic.writer import (
    CritiqueWriter,
    DecoderDrafter,
    Grounder,
    RetrievalDrafter,
    TemplateDrafter,
    VectorNeighbours,
    build_lexicon,
)
from critic.writer.evaluate import (
    bleu4,
    distinct_n,
    evaluate_critiques,
    evaluate_writer,
    format_table,
    rouge_l,
    template_key,
)


def test_rouge_l():
    assert rouge_l("the cat sat", "the cat sat") == 1.0
    assert rouge_l("", "the cat") == 0.0
    # LCS "the sat" (2 words): precision 2/3, recall 2/4
    assert rouge_l("the dog sat", "the cat has sat") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_bleu4():
    assert bleu4(["a b c d e"], ["a b c d e"]) == pytest.approx(1.0)
    assert bleu4(["a b c d"], ["w x y z"]) == 0.0
    # Same n-grams, half the length of the reference: the brevity penalty exp(1 - 2) applies.
    assert bleu4(["a b c d e f"], ["a b c d e f a b c d e f"]) == pytest.approx(2.718281828 ** (1 - 2), rel=1e-6)


def test_distinct_2():
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n([], 2) == 0.0


def test_protocol_runs_every_drafter_on_held_out_artworks():
    tiny = tiny_writer()
    train, test = tiny.records[:170], tiny.records[170:]
    grounder = Grounder(tiny.embed, tiny, VectorNeighbours(train, tiny.latents(tiny.embeddings[:170])))
    lexicon = tiny.model.lexicon
    decoder = DecoderDrafter(tiny.model, tiny.embed, samples=3, neighbours=2)
    drafters = [decoder, RetrievalDrafter(lexicon, tiny.embed), TemplateDrafter(lexicon, tiny.embed)]
    result = evaluate_writer(test, drafters, grounder, tiny.embed, build_lexicon(tiny.records), limit=8,
                             fluency_samples=0)  # fmt: skip
    assert result["artworks"] == 8 and result["fluency_artworks"] == 0
    assert [r["drafter"] for r in result["rows"]] == ["decoder+neighbours", "retrieval", "template"]
    # The template row, recomputed here: the same seeded sample, its drafts and their cosines to the references.
    described = [r for r in test if r.description.strip()]
    sample = random.Random(0).sample(described, 8) if len(described) > 8 else described
    drafts = [TemplateDrafter(lexicon, tiny.embed).draft(g).text for g in grounder.ground_many(
        [replace(r, description="") for r in sample])]  # fmt: skip
    cosines = np.sum(tiny.embed(drafts) * tiny.embed([r.description for r in sample]), axis=1)
    template = result["rows"][2]
    assert template["sbert_cosine"] == pytest.approx(float(cosines.mean()), abs=1e-5)
    assert template["mean_words"] == pytest.approx(np.mean([len(d.split()) for d in drafts]))
    assert template["template_fallback_rate"] == 1.0 and template["distinct_2"] == pytest.approx(distinct_n(drafts))
    assert "| decoder+neighbours |" in format_table(result)
    # The held-out descriptions never reach the drafters: no draft copies its own reference.
    for rows in result["examples"].values():
        assert all(e["draft"] != e["reference"] for e in rows)


def test_template_key_masks_what_varies_from_work_to_work():
    vocabulary = {"bronze", "lion", "paduan"}
    assert template_key("Its medium, bronze, is rare here: 12 of 1,900 works.", vocabulary) == (
        "its medium, x, is rare here: # of # works."
    )
    assert template_key("Lion (Paduan, ca. 1500; id 900) shares the material bronze.", vocabulary) == (
        "x (…) shares the material x."
    )
    assert template_key("The museum's catalogue notes: “A lion.”", vocabulary) == "the museum's catalogue notes: “…”"


def test_critique_measures_on_a_sample():
    tiny = tiny_writer()
    below, side = tiny.records[:150], tiny.records[150:]
    grounder = Grounder(tiny.embed, tiny, VectorNeighbours(below, tiny.latents(tiny.embeddings[:150])))
    lexicon = build_lexicon(tiny.records)
    writer = CritiqueWriter(TemplateDrafter(lexicon, tiny.embed), lexicon)
    result = evaluate_critiques(side, writer, grounder, below, lexicon, samples=12)
    assert result["critiques"] == 12 and result["described"] == 12
    # Every sampled work has a description, and every critique quotes its own.
    assert result["described_quoting_own_description"] == 1.0
    shares = [t["share"] for t in result["most_frequent_templates"]]
    assert shares == sorted(shares, reverse=True) and result["top_template_share"] == shares[0]
    assert result["latency_p99_s"] >= result["latency_p50_s"]


def test_the_validation_rule_picks_the_closest_fluent_drafter():
    from critic.writer.protocol import choose_drafter

    rows = [
        {"drafter": "edit", "sbert_cosine": 0.37, "fluency_ratio": 1.47},
        {"drafter": "retrieval", "sbert_cosine": 0.35, "fluency_ratio": 1.2},
        {"drafter": "decoder", "sbert_cosine": 0.30, "fluency_ratio": 1.1},
        {"drafter": "template", "sbert_cosine": 0.5, "fluency_ratio": 0.9},
    ]
    assert choose_drafter(rows)["drafter"] == "retrieval"
    assert choose_drafter(rows[:1])["drafter"] is None
