"""What the writer knows about the whole collection: person-name tokens, material, culture and place words.

The slot filler and the fact check both need to tell a person's name from a culture attribution
("Egyptian (Artist)") and a material ("bronze") from a colour ("blue"). The rules are deliberately simple
so that every flag can be explained by pointing at the word list it came from.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from critic.records import Artwork

#: Anonymous attributions in museum catalogs are nationalities or cultures, not people.
DEMONYMS = frozenset(
    """
    american ancient armenian assyrian austrian aztec babylonian bohemian british burgundian burmese
    byzantine cambodian canadian carolingian celtic chinese christian coptic cretan cypriot czech danish
    dutch egyptian english ethiopian etruscan european flemish florentine franco frankish french
    gandharan german gothic greek hellenistic hispano hungarian indian iranian iraqi irish islamic
    italian japanese javanese jewish khmer korean lombard mamluk maya mesoamerican mesopotamian mexican
    milanese mongol moroccan mosan mughal nepalese netherlandish norman north ottoman parthian persian
    peruvian phoenician polish portuguese roman romanesque russian safavid sasanian scottish sicilian
    sienese spanish sri swiss syrian thai tibetan turkish umbrian venetian viking
    """.split()
)
#: Colours and qualities that turn up in Medium fields but say nothing about what the object is made of.
QUALIFIERS = frozenset(
    """
    european non-european medium weight thick thin thickness heavy heavier light dark darker soft high
    quality textured colored colors color cream creamy beige buff white black blue bluish brown green
    red reddish yellow pink gray grey purple orange rose violet tan clean coarse rougher smooth matte
    mat opaque transparent uneven velvety solid full-page post-fire cartridge-style metallic
    """.split()
)
#: Function words and parts of a book or mount that Medium fields mention beside the materials.
NOT_MATERIAL = QUALIFIERS | frozenset(
    """
    and on with of in to or a an the from over between for but use both sides edges margin margins frame
    very well probably traces trace decoration miniatures folio folded bound mounted covered cast carved
    painted gilded tinted finished finish heightened heightening underdrawing worn yellowed skin leaf
    sheet sheets ray rock dial dust spine sheath satchel sperm tooth spun nap mount arab plein flyleave
    flyleaves pastedown doublure watermark weft warp parcel overlay polychromy robin's paint pigment
    pigments
    """.split()
)
_WORD = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’-]*")
_PARENS = re.compile(r"\([^()]*\)")
_ROMAN = re.compile(r"[IVXLC]+")
#: A capitalised word after a locative preposition ("made in Venice", "at Lille"), not a possessive.
_AFTER_LOCATIVE = re.compile(r"\b(?:in|at|near|from)\s+([A-Z][A-Za-zÀ-ÿ-]+)\b(?!['’])")


def words(text: str) -> list[str]:
    """Word tokens of a text, case kept (hyphenated and apostrophe words stay whole)."""
    return _WORD.findall(text or "")


def clean_creator(name: str) -> str:
    """A creator string without its parenthesised nationality, life dates and role.

    Example:
        >>> clean_creator("Omori Teruhide (Japanese, 1730-1798) (Artist)")
        'Omori Teruhide'
    """
    previous = None
    while previous != name:
        previous, name = name, _PARENS.sub("", name)
    return " ".join(name.split()).strip(" ,;")


def singular(word: str) -> str:
    """Crude plural folding, enough to match 'enamels' with 'enamel' and 'pearls' with 'pearl'."""
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


@dataclass(frozen=True)
class Lexicon:
    """Collection-wide word lists (built once from the training records, stored with the writer).

    ``name_tokens``: capitalised tokens of person creators that are not ordinary English words.
    ``materials``: singular lower-case material words seen in the collection's Medium field.
    ``demonyms``: culture words; a creator made only of these is an attribution, not a person.
    ``places``: proper nouns the descriptions put after "in", "at", "near" or "from" (Venice, Lille,
    Jingdezhen; also a few languages and months, which a draft must not invent either).
    """

    name_tokens: frozenset[str]
    materials: frozenset[str]
    demonyms: frozenset[str]
    places: frozenset[str] = frozenset()

    def is_person(self, creator: str) -> bool:
        """True for 'Alfred Jacob Miller', False for 'Egyptian (Artist)' or 'Venetian ()'."""
        tokens = [w.lower() for w in words(clean_creator(creator))]
        return bool(tokens) and not all(t in self.demonyms for t in tokens)

    def persons(self, record: Artwork) -> list[str]:
        """The record's creators that are people, cleaned of their parenthesised parts."""
        return [clean_creator(c) for c in record.creators if self.is_person(c)]

    def attributions(self, record: Artwork) -> list[str]:
        """The record's creators that are culture attributions ('Egyptian'), cleaned."""
        return [clean_creator(c) for c in record.creators if c.strip() and not self.is_person(c)]

    def materials_of(self, text: str) -> list[str]:
        """Material words of a medium string as written (lower case), in order, without repeats.

        Example: 'ink, gold and silver on paper' -> ['ink', 'gold', 'silver', 'paper'].
        """
        seen: dict[str, str] = {}
        for w in words(text):
            if singular(w) in self.materials:
                seen.setdefault(singular(w), w.lower())
        return list(seen.values())

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "name_tokens": sorted(self.name_tokens),
            "materials": sorted(self.materials),
            "demonyms": sorted(self.demonyms),
            "places": sorted(self.places),
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Lexicon:
        # Writers saved before places were checked have none.
        return cls(*(frozenset(data.get(key, ())) for key in ("name_tokens", "materials", "demonyms", "places")))


def build_lexicon(records: Iterable[Artwork], min_medium_count: int = 5, min_place_count: int = 3) -> Lexicon:
    """Derive the word lists from a collection.

    A material is a Medium-field word seen in at least ``min_medium_count`` records that is used in Medium
    fields at least half as often as in descriptions (colours and 'carved' fail that) and is not on the
    NOT_MATERIAL list. A name token is a capitalised word of a person creator that the descriptions never
    use in lower case (so 'Master' or 'Rose' are not names). A place is a word that follows "in", "at",
    "near" or "from" in at least ``min_place_count`` descriptions and is none of those.
    """
    records = list(records)
    culture_words = {w.lower() for r in records for field in (r.culture, r.style) for w in words(field) if len(w) > 2}
    demonyms = DEMONYMS | culture_words
    in_medium: Counter[str] = Counter()
    in_description: Counter[str] = Counter()
    lower_in_text: set[str] = set()
    after_locative: Counter[str] = Counter()
    for r in records:
        in_medium.update({singular(w) for w in words(r.medium)})
        after_locative.update(set(_AFTER_LOCATIVE.findall(r.description)))
        description_words = words(r.description)
        in_description.update({singular(w) for w in description_words})
        lower_in_text.update(w for w in description_words if w[0].islower())
    materials = frozenset(
        w
        for w, n in in_medium.items()
        if n >= min_medium_count
        and len(w) > 2
        and w not in NOT_MATERIAL
        and not any(part in QUALIFIERS for part in w.split("-"))
        and not w.endswith(("ly", "ed", "ing"))
        and n >= 0.5 * in_description[w]
        and w not in demonyms
    )
    lexicon = Lexicon(frozenset(), materials, frozenset(demonyms))
    name_tokens = {
        w
        for r in records
        for person in lexicon.persons(r)
        for w in words(person)
        if w[0].isupper()
        and len(w) > 2
        and w.lower() not in lower_in_text
        and w.lower() not in demonyms
        and not _ROMAN.fullmatch(w)
    }
    places = {
        w
        for w, n in after_locative.items()
        if n >= min_place_count
        and len(w) > 2
        and w.lower() not in lower_in_text
        and w.lower() not in demonyms
        and w not in name_tokens
    }
    return Lexicon(frozenset(name_tokens), materials, frozenset(demonyms), frozenset(places))
