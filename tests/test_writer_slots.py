"""Delexicalisation and slot filling: a record's own facts out, the target's facts in."""

from __future__ import annotations

import pytest

from critic.records import Artwork
from critic.writer.lexicon import build_lexicon, clean_creator
from critic.writer.slots import (
    century_phrase,
    delexicalise,
    fill,
    fill_or_drop,
    slot_values,
    unfilled_slots,
)

MILLER = Artwork(
    id="1",
    title="The Trapper's Bride",
    creators=["Alfred Jacob Miller (American, 1810-1874)"],
    date_text="1837",
    year_start=1837,
    year_end=1837,
    medium="oil on canvas",
    culture="American",
    description="Miller painted the scene in 1837 in oil, long before the 1850 version.",
)
BOWL = Artwork(
    id="2",
    title="Decorated Bowl",
    creators=["Egyptian"],
    date_text="ca. 1450 BC",
    year_start=-1462,
    year_end=-1438,
    medium="Egyptian faience",
    period="New Kingdom",
    description="This faience bowl of the New Kingdom shows tilapia fish.",
)
SCROLL = Artwork(id="3", title="Scroll", medium="ink on silk", description="A silk scroll painted in ink.")


@pytest.fixture(scope="module")
def lexicon(walters_slice):
    return build_lexicon([*walters_slice, MILLER, BOWL, SCROLL])


def test_own_facts_become_slots(lexicon):
    text = delexicalise(MILLER.description, MILLER, lexicon)
    assert text == "<CREATOR> painted the scene in <DATE> in <MATERIAL>, long before the <OTHER_DATE> version."
    bowl = delexicalise(BOWL.description, BOWL, lexicon)
    assert "<PERIOD>" in bowl and "<MATERIAL>" in bowl and "New Kingdom" not in bowl


def test_culture_attribution_is_not_a_person(lexicon):
    assert lexicon.persons(BOWL) == []
    assert lexicon.attributions(BOWL) == ["Egyptian"]
    assert lexicon.persons(MILLER) == ["Alfred Jacob Miller"]
    assert clean_creator("Venetian ()") == "Venetian"


def test_slots_are_filled_from_the_target_record(lexicon):
    template = delexicalise(MILLER.description, MILLER, lexicon)
    filled = fill_or_drop(template, slot_values(BOWL, lexicon))
    # Bowl has no person creator: the sentence naming the creator cannot be kept.
    assert filled == ""
    template = "<CREATOR> made this <MATERIAL> piece in <DATE>. Later <CREATOR> signed it."
    filled = fill(template, slot_values(MILLER, lexicon))
    assert filled == "Alfred Jacob Miller made this oil piece in 1837. Later Miller signed it."
    assert not unfilled_slots(filled)


def test_every_walters_description_refills_without_leaking_its_source(walters_slice, lexicon):
    """Slots are always filled from the target: no source name or date survives a swap to another record."""
    with_text = [r for r in walters_slice if r.description][:120]
    for source, target in zip(with_text, with_text[1:] + with_text[:1], strict=True):
        text = fill_or_drop(delexicalise(source.description, source, lexicon), slot_values(target, lexicon))
        assert not unfilled_slots(text)
        for person in lexicon.persons(source):
            if person not in lexicon.persons(target) and person not in target.title:
                assert person not in text
        if source.date_text and source.date_text != target.date_text and len(source.date_text) > 4:
            assert source.date_text not in text


def test_unfillable_sentences_are_dropped_not_shown(lexicon):
    values = slot_values(SCROLL, lexicon)  # no creator, no date, no period
    text = fill_or_drop("It is <MATERIAL> on <MATERIAL2>. <CREATOR> made it in <DATE>. A quiet work.", values)
    assert text == "It is ink on silk. A quiet work."


def test_century_phrase():
    assert century_phrase(1837, 1837) == "19th century"
    assert century_phrase(1501, 1650) == "16th-17th century"
    assert century_phrase(-550, -450) == "6th-5th century BC"
    assert century_phrase(None, 1900) == ""
