"""Fact check: flag a draft that states a year, a person's name, a medium or a place the record does not support.

Rules, each explainable by pointing at one field:
- year: a 3-4 digit number (not followed by a unit) that is neither in the record's date text nor within
  year_start..year_end; a century that does not overlap those years;
- name: a capitalised word that belongs to the name of a person creator elsewhere in the collection
  (Lexicon.name_tokens) but to none of this record's creators, title, keywords or description;
- medium: a material word of the collection (Lexicon.materials) absent from this record's medium,
  title, classification, object type, keywords and description;
- place: a place word of the collection (Lexicon.places) that starts none of this record's words ("Egypt"
  is supported by a culture "Egyptian", "Lille" only by a record that names Lille);
- slot: a slot token nobody filled.
"""

from __future__ import annotations

from dataclasses import dataclass

from critic.records import Artwork
from critic.writer.lexicon import Lexicon, singular, words
from critic.writer.slots import CENTURY_RE, SLOT_RE, YEAR_RE, century_supported, year_supported


@dataclass(frozen=True)
class Violation:
    """One unsupported statement in a draft."""

    kind: str  # "year" | "century" | "name" | "medium" | "place" | "slot"
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} '{self.text}': {self.reason}"


def record_words(record: Artwork) -> list[str]:
    """The words a record vouches for: its title, description, fields, creators and keywords."""
    fields = [record.title, record.description, record.object_type, record.classification, record.medium,
              record.culture, record.style, record.period]  # fmt: skip
    return [w for field in [*fields, *record.creators, *record.keywords] for w in words(field or "")]


def place_supported(place: str, own_lower: set[str]) -> bool:
    """Whether a record whose lower-cased words are ``own_lower`` vouches for ``place``."""
    # A shared stem, so that a culture field ("Egyptian", "Chinese") vouches for its country.
    stem = place.lower()[: max(4, len(place) - 2)]
    return any(w.startswith(stem) for w in own_lower)


def check_draft(text: str, record: Artwork, lexicon: Lexicon) -> list[Violation]:
    """Every unsupported year, century, name, medium word, place and unfilled slot in ``text``, in order.

    Example:
        >>> lx = Lexicon(frozenset({"Bellini"}), frozenset({"bronze", "oil"}), frozenset(), frozenset({"Lille"}))
        >>> r = Artwork(id="1", creators=["Titian"], date_text="1540", year_start=1540, year_end=1540,
        ...             medium="oil on canvas")
        >>> [v.kind for v in check_draft("Bellini cast this bronze at Lille in 1620.", r, lx)]
        ['year', 'name', 'medium', 'place']
    """
    violations: list[Violation] = []
    for m in CENTURY_RE.finditer(text):
        if not century_supported(record, m.group(1), m.group(2), m.group(3)):
            violations.append(Violation("century", m.group(0), f"record dates are '{record.date_text}'"))
    for m in YEAR_RE.finditer(CENTURY_RE.sub(" ", text)):
        if not year_supported(record, m.group(1), m.group(3)):
            span = f"{record.year_start}..{record.year_end}"
            violations.append(Violation("year", m.group(0).strip(), f"not in '{record.date_text}' or {span}"))
    own = record_words(record)
    own_names = set(own)
    for token in dict.fromkeys(w for w in words(text) if w in lexicon.name_tokens and w not in own_names):
        violations.append(Violation("name", token, "a creator of other records, not of this one"))
    own_materials = {singular(w) for w in own}
    for token in dict.fromkeys(w for w in words(text) if singular(w) in lexicon.materials):
        if singular(token) not in own_materials:
            violations.append(Violation("medium", token, f"not in the medium '{record.medium}'"))
    own_lower = {w.lower() for w in own}
    for token in dict.fromkeys(w for w in words(text) if w in lexicon.places):
        if not place_supported(token, own_lower):
            violations.append(Violation("place", token, "a place this record does not name"))
    violations.extend(Violation("slot", m.group(0), "no value to fill it") for m in SLOT_RE.finditer(text))
    return violations
