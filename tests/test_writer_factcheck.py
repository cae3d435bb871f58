"""The fact check rejects unsupported years, names, media and unfilled slots, and passes supported ones."""

from __future__ import annotations

import pytest

from critic.records import Artwork
from critic.writer.factcheck import check_draft
from critic.writer.lexicon import build_lexicon

MADONNA = Artwork(
    id="10",
    title="Madonna and Child",
    creators=["Giovanni Bellini (Italian, ca. 1435-1516)"],
    date_text="ca. 1480-1485",
    year_start=1480,
    year_end=1485,
    medium="tempera and oil on panel",
    description="",
)
OTHERS = [
    Artwork(id="11", title="Saint Jerome", creators=["Lorenzo Lotto (Italian)"], medium="oil on canvas"),
    Artwork(id="12", title="Horse", creators=["Giambologna"], medium="bronze"),
    Artwork(
        id="13",
        title="Vase",
        creators=["Chinese"],
        medium="porcelain",
        date_text="ca. 450 BC",
        year_start=-460,
        year_end=-440,
    ),
]


@pytest.fixture(scope="module")
def lexicon(walters_slice):
    return build_lexicon([*walters_slice, MADONNA, *OTHERS])


def kinds(text, record, lexicon):
    return [v.kind for v in check_draft(text, record, lexicon)]


def test_supported_draft_passes(lexicon):
    text = "Giovanni Bellini painted this Madonna in tempera on panel around 1482, in the 15th century."
    assert check_draft(text, MADONNA, lexicon) == []


def test_wrong_year_is_rejected(lexicon):
    assert kinds("Bellini painted it in 1520.", MADONNA, lexicon) == ["year"]
    assert kinds("It dates from the 17th century.", MADONNA, lexicon) == ["century"]
    violation = check_draft("Bellini painted it in 1520.", MADONNA, lexicon)[0]
    assert "1520" in str(violation) and "1480" in str(violation)


def test_wrong_name_is_rejected(lexicon):
    assert kinds("Lotto painted this Madonna.", MADONNA, lexicon) == ["name"]
    assert kinds("A Madonna in the manner of Giambologna.", MADONNA, lexicon) == ["name"]


def test_wrong_medium_is_rejected(lexicon):
    assert kinds("A bronze Madonna on panel.", MADONNA, lexicon) == ["medium"]
    assert kinds("A Madonna painted on canvas.", MADONNA, lexicon) == ["medium"]


def test_unfilled_slot_is_rejected(lexicon):
    assert kinds("Made by <CREATOR>.", MADONNA, lexicon) == ["slot"]


def test_bc_years_and_measurements(lexicon):
    vase = OTHERS[2]
    assert check_draft("Potted about 450 BC.", vase, lexicon) == []
    assert kinds("Potted about 450 AD.", vase, lexicon) == ["year"]
    assert check_draft("It stands 120 cm high.", vase, lexicon) == []


def test_facts_stated_in_the_records_own_text_are_supported(lexicon):
    record = Artwork(id="20", title="Cup", medium="silver", description="Lotto owned this gold cup in 1520.")
    assert check_draft("A gold cup that Lotto owned in 1520.", record, lexicon) == []


def test_dates_in_title_creators_and_medium_are_supported(lexicon):
    record = Artwork(
        id="21",
        title="Portrait of Colonel Smith (1790-1858)",
        creators=["Alfred Jacob Miller (American, 1810-1874)"],
        date_text="1833",
        year_start=1833,
        year_end=1833,
        medium="oil on canvas in an early 20th century frame",
    )
    text = "Miller, born in 1810, painted Smith (1790-1858) in 1833; the frame is 20th century."
    assert check_draft(text, record, lexicon) == []
    assert kinds("He painted it in 1840.", record, lexicon) == ["year"]


def test_a_place_the_record_does_not_name_is_rejected():
    told = [
        Artwork(id=f"p{i}", title="Panel", description=f"It was painted at Lille and sold in Egypt, lot {i}.")
        for i in range(3)
    ]
    lexicon = build_lexicon([*told, MADONNA])
    assert {"Lille", "Egypt"} <= lexicon.places
    assert kinds("Bellini painted this Madonna at Lille.", MADONNA, lexicon) == ["place"]
    # A culture field vouches for its country; the record's own text vouches for any place it names.
    amulet = Artwork(id="21", title="Amulet", culture="Egyptian", medium="faience")
    assert check_draft("An amulet made in Egypt.", amulet, lexicon) == []
    assert check_draft("It was painted at Lille.", told[0], lexicon) == []
