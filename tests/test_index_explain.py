"""Explanations name the score and what a result shares with the query artwork or text."""

from __future__ import annotations

from critic.records import Artwork
from index.explain import explain

QUERY = Artwork(
    id="q",
    title="Madonna",
    creators=["Giovanni Bellini"],
    period="Renaissance",
    culture="Italian",
    medium="Tempera on panel",
    keywords=["Madonna", "Child", "gold leaf"],
)
RESULT = Artwork(
    id="r",
    title="Virgin and Child",
    creators=["Giovanni Bellini", "Workshop"],
    period="Renaissance",
    culture="Venetian",
    medium="tempera on panel",
    keywords=["child", "Madonna", "angels"],
)


def test_a_result_names_shared_decoded_attributes_creators_fields_and_keywords():
    why = explain(
        RESULT,
        0.8765,
        reference=QUERY,
        result_attributes={"period": "Renaissance", "style": "Gothic", "culture": "Italian"},
        reference_attributes={"period": "renaissance", "style": "Byzantine", "culture": "Italian"},
    )
    assert why == [
        "style similarity 0.88",
        "both decoded as period: Renaissance; culture: Italian",
        "same creator: Giovanni Bellini",
        "same period: Renaissance",
        "same medium: tempera on panel",
        "shared keywords: child, Madonna",
    ]


def test_nothing_shared_leaves_only_the_score():
    assert explain(Artwork(id="x", period="Edo"), 0.31, reference=QUERY) == ["style similarity 0.31"]


def test_a_text_query_gets_the_decoded_attributes_and_the_query_words_found():
    why = explain(
        RESULT,
        0.5,
        result_attributes={"period": "Renaissance", "style": ""},
        query_text="A Venetian madonna with angels, 1480",
    )
    assert why == [
        "style similarity 0.50",
        "decoded as period: Renaissance",
        "query words found: venetian, madonna, angels",
    ]
