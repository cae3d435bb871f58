"""Critiques: sections, tones and their lengths, evidence, seeds, new artworks and bad input."""

from __future__ import annotations

import pytest
from test_writer_support import tiny_writer

from critic.writer import (
    TONES,
    CritiqueWriter,
    DecoderDrafter,
    WriterInputError,
    artwork_from_text,
)
from critic.writer.slots import SLOT_RE


@pytest.fixture(scope="module")
def tiny():
    return tiny_writer()


@pytest.fixture(scope="module")
def writer(tiny):
    return CritiqueWriter(DecoderDrafter(tiny.model, tiny.embed, samples=4, neighbours=3), tiny.model.lexicon)


@pytest.fixture(scope="module")
def grounding(tiny):
    g = tiny.grounder().ground(tiny.records[5])
    g.attributes = {"classification": tiny.records[5].classification.lower(), "period": "baroque"}
    return g


def test_json_shape_sections_and_evidence(writer, grounding):
    result = writer.critique(grounding, tone="critique", seed=3).to_json()
    assert set(result) == {"id", "tone", "text", "sections", "evidence"}
    assert result["id"] == grounding.record.id and result["tone"] == "critique"
    titles = [s["title"] for s in result["sections"]]
    assert titles == ["What it is", "Description", "Style and technique", "Comparison", "Assessment"]
    neighbour_ids = [n["id"] for n in result["evidence"]["neighbours"]]
    assert len(neighbour_ids) == 3 and grounding.record.id not in neighbour_ids
    assert all(i in result["text"] for i in neighbour_ids)
    assert "title" in result["evidence"]["fields"] and result["evidence"]["draft"]["drafter"]
    assert result["evidence"]["fact_check"] == []
    assert not SLOT_RE.search(result["text"])


def test_tone_lengths(writer, grounding):
    lengths = {tone: len(writer.critique(grounding, tone=tone, seed=1).text.split()) for tone in TONES}
    assert lengths["label"] <= 80
    assert 150 <= lengths["critique"] <= 330
    assert lengths["scholarly"] > lengths["label"]


def test_same_seed_same_text(writer, grounding):
    first = writer.critique(grounding, tone="scholarly", seed=11).to_json()
    assert writer.critique(grounding, tone="scholarly", seed=11).to_json() == first


def test_new_artwork_from_text_and_metadata(tiny, writer):
    record = artwork_from_text(
        "A small gilt bronze statuette of a rearing horse, cast in Florence.",
        {"title": "Rearing Horse", "medium": "gilt bronze", "date_text": "ca. 1600", "year_start": 1590},
    )
    result = writer.critique(tiny.grounder().ground(record), tone="label", seed=2).to_json()
    assert result["id"] == "new" and "Rearing Horse" in result["text"]
    assert len(result["text"].split()) <= 80


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("   \n\t ", "empty"), ("x" * 100_000, "too long"), ("?!... --- ;;", "no words"), (None, "string")],
)
def test_empty_or_absurd_text_is_a_clear_error(text, message):
    with pytest.raises(WriterInputError, match=message) as error:
        artwork_from_text(text)
    assert "\n" not in str(error.value)


def test_bad_metadata_tone_and_seed_are_clear_errors(writer, grounding):
    with pytest.raises(WriterInputError, match="unknown tone"):
        writer.critique(grounding, tone="sonnet")
    with pytest.raises(WriterInputError, match="seed"):
        writer.critique(grounding, seed=-1)
    with pytest.raises(WriterInputError, match="year_start"):
        artwork_from_text("a vase", {"year_start": "sometime"})
    with pytest.raises(WriterInputError, match="metadata"):
        artwork_from_text("a vase", ["not", "a", "dict"])
