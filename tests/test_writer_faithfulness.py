"""The evaluation's own unsupported-content measure (not the fact check): rules on known good and bad text."""

from __future__ import annotations

from critic.records import Artwork
from critic.writer.faithfulness import content_words, unsupported, unsupported_rate

BOWL = Artwork(id="1", title="Bowl with Lions", medium="bronze", culture="Venetian", date_text="ca. 1520",
               year_start=1515, year_end=1525, description="Cast for the Doge in Murano.")  # fmt: skip
NEIGHBOUR = Artwork(id="2", title="Ewer", medium="brass", description="Such vessels were chased with lions.")


def test_content_words_by_rule():
    found = [(w.word, w.kind) for w in content_words("The bowl was chased in Venice around 1520. It is gilded.")]
    assert found == [("bowl", "noun"), ("Venice", "proper"), ("1520", "number")]


def test_a_supported_draft_has_nothing_unsupported():
    assert unsupported("A Venetian bronze bowl with lions, about 1518.", BOWL) == []


def test_invented_content_is_counted_and_the_hidden_description_is_no_support():
    # "Murano" and "Doge" are in the description, which a drafter never saw: they are not supported.
    words = [w.word for w in unsupported("The bowl was made for the Doge in Murano in 1610 for a banquet.", BOWL)]
    assert words == ["Doge", "Murano", "1610", "banquet"]


def test_a_cited_neighbour_supports_what_it_says():
    text = "Such vessels were chased with lions and handles."
    assert [w.word for w in unsupported(text, BOWL)] == ["vessel", "handles"] or [
        w.word for w in unsupported(text, BOWL)
    ] == ["vessels", "handles"]
    assert [w.word for w in unsupported(text, BOWL, [NEIGHBOUR])] == ["handles"]
    assert unsupported_rate(text, BOWL, [NEIGHBOUR]) == (1, 3)


def test_naming_a_field_the_record_fills_claims_only_its_value():
    r = Artwork(id="1", title="Bowl", period="Baroque", culture="Venetian")
    assert [w.word for w in unsupported("It belongs to the Baroque period, of Venetian origin.", r)] == []
    assert [w.word for w in unsupported("It belongs to the Baroque style.", r)] == ["style"]
