"""Writing metrics and the evaluation protocol on a tiny split."""

from __future__ import annotations

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
    evaluate_writer,
    format_table,
)
from critic.writer.evaluate import bleu4, distinct_n, rouge_l


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
    train_only = VectorNeighbours(train, tiny.latents(tiny.embeddings[:170]))
    grounder = Grounder(tiny.embed, tiny, train_only)
    lexicon = tiny.model.lexicon
    decoder = DecoderDrafter(tiny.model, tiny.embed, samples=3, neighbours=2)
    drafters = [decoder, RetrievalDrafter(lexicon, tiny.embed), TemplateDrafter(lexicon, tiny.embed)]
    result = evaluate_writer(
        test,
        drafters,
        grounder,
        tiny.embed,
        build_lexicon(tiny.records),
        critique_writer=CritiqueWriter(decoder, lexicon),
        critique_samples=3,
        limit=8,
    )
    assert result["artworks"] == 8
    assert [r["drafter"] for r in result["rows"]] == ["decoder+neighbours", "retrieval", "template"]
    for row in result["rows"]:
        assert -1 <= row["sbert_cosine"] <= 1 and 0 <= row["hallucination_rate"] <= 1
    assert result["critique_latency_p50_s"] > 0
    assert "| decoder+neighbours |" in format_table(result)
    # The held-out descriptions never reach the drafters: no draft copies its own reference.
    for rows in result["examples"].values():
        assert all(e["draft"] != e["reference"] for e in rows)
