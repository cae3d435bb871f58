"""Delexicalisation: a record's own facts in its description become slot tokens, filled from another record.

Training text never teaches the decoder a name, a date or a medium: "Miller painted this oil sketch in 1837"
becomes "<CREATOR> painted this <MATERIAL> sketch in <DATE>", and generation writes the target's own
values back. A year or century that is not the record's own becomes <OTHER_DATE>, which no record can
fill, so the decoder is never allowed to emit one and a retrieved sentence holding one is dropped.
"""

from __future__ import annotations

import re

from critic.records import Artwork
from critic.writer.lexicon import Lexicon, singular, words

SLOT_RE = re.compile(r"<([A-Z][A-Z0-9_]*)>")
#: Slots a record can fill, in the order the critique's evidence lists them.
SLOTS = (
    "TITLE",
    "CREATOR",
    "CREATOR2",
    "DATE",
    "CENTURY",
    "MEDIUM",
    "MATERIAL",
    "MATERIAL2",
    "MATERIAL3",
    "CULTURE",
    "PERIOD",
    "STYLE",
)
OTHER_DATE = "OTHER_DATE"
MATERIAL_SLOTS = ("MATERIAL", "MATERIAL2", "MATERIAL3")
#: Which record field each slot's value comes from (for the evidence of a result).
SLOT_FIELDS = {
    "TITLE": "title",
    "CREATOR": "creators",
    "CREATOR2": "creators",
    "DATE": "date_text",
    "CENTURY": "year_start",
    "MEDIUM": "medium",
    "MATERIAL": "medium",
    "MATERIAL2": "medium",
    "MATERIAL3": "medium",
    "CULTURE": "culture",
    "PERIOD": "period",
    "STYLE": "style",
}

_ERA = r"(?:\s*(?:BC|B\.C\.|BCE|AD|A\.D\.|CE|AH)\b)?"
#: "1837", "1485-95", "ca. 1450 BC", "971 AH"; the optional unit test keeps "120 cm" from being a year.
YEAR_RE = re.compile(
    r"(?<![\w.,])(\d{3,4})(?![\d,])(?:\s*[-–]\s*(\d{2,4})(?!\d))?(" + _ERA + r")(?!\s*(?:cm|mm|km|kg|g)\b)"
)
#: "16th century", "6th-5th century BC", "11th century AH".
CENTURY_RE = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)(?:\s*(?:[-–]|and|or|to)\s*(\d{1,2})(?:st|nd|rd|th))?[\s-]+centur(?:y|ies)("
    + _ERA
    + ")",
    re.IGNORECASE,
)
_BC = re.compile(r"\bB\.?C\.?(?:E\b)?")
_AD = re.compile(r"\b(?:AD|A\.D\.|CE)\b")
#: A sentence ends at . ! or ? before a capital, an opening quote or a slot, unless the word before is a catalogue
#: abbreviation ("ca. 1470", "fol. 23", "St. John").
SENTENCE_END = re.compile(
    r"(?<!\bca\.)(?<!\bSt\.)(?<!\bno\.)(?<!\bcat\.)(?<!\bfig\.)(?<!\bfol\.)(?<!\bfols\.)(?<!\bvol\.)(?<!\bcf\.)"
    r"(?<=[.!?])\s+(?=[A-Z“\"‘(<])"
)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def century_of(year: int) -> int:
    """Signed century number: 1837 -> 19, -450 -> -5 (5th century BC)."""
    return (year - 1) // 100 + 1 if year > 0 else -((-year - 1) // 100 + 1)


def century_phrase(year_start: int | None, year_end: int | None) -> str:
    """'19th century', '16th-17th century', '6th century BC'; '' when the dates are unknown or span > 3."""
    if year_start is None or year_end is None:
        return ""
    lo, hi = sorted((century_of(year_start), century_of(year_end)))
    if hi - lo > 2 or (lo < 0 < hi):
        return ""
    era = " BC" if hi < 0 else ""
    first, last = abs(lo), abs(hi)
    span = ordinal(first) if first == last else f"{ordinal(first)}-{ordinal(last)}"
    return f"{span} century{era}"


def year_value(number: str, era: str) -> int:
    return -int(number) if era.strip().upper().replace(".", "") in {"BC", "BCE"} else int(number)


def _own_dates_text(record: Artwork, with_description: bool) -> str:
    """Where a record states dates: its date text, and for checking also its title ("Portrait of X
    (1790-1858)"), creators' life dates, medium and description."""
    if not with_description:
        return record.date_text or ""
    return " ".join([record.date_text, record.title, record.medium, record.description, *record.creators])


def year_supported(record: Artwork, number: str, era: str = "", slack: int = 5, with_description: bool = True) -> bool:
    """A stated year is the record's own if the record names it (see _own_dates_text) or it lies in its
    years."""
    own = _own_dates_text(record, with_description)
    stated = era.strip().upper().replace(".", "")
    if number in re.findall(r"\d+", own):
        bc_text, ad_text = bool(_BC.search(own)), bool(_AD.search(own))
        # "450 AD" is not the "450" of "ca. 450 BC", nor "450 BC" that of a date with no BC in it.
        contradicts = (stated in {"BC", "BCE"} and not bc_text) or (stated in {"AD", "CE"} and bc_text and not ad_text)
        if not contradicts:
            return True
    if stated == "AH" or record.year_start is None or record.year_end is None:
        return False
    lo, hi = sorted((record.year_start, record.year_end))
    return lo - slack <= year_value(number, era) <= hi + slack


def century_supported(
    record: Artwork, first: str, last: str | None, era: str = "", with_description: bool = True
) -> bool:
    """A stated century range is the record's own if the record names it or it overlaps its years."""
    if re.search(rf"\b{first}(?:st|nd|rd|th)\b", _own_dates_text(record, with_description).lower()):
        return True
    if era.strip().upper() == "AH" or record.year_start is None or record.year_end is None:
        return False
    sign = -1 if era.strip().upper().replace(".", "") in {"BC", "BCE"} else 1
    stated = sorted((sign * int(first), sign * int(last or first)))
    own = sorted((century_of(record.year_start), century_of(record.year_end)))
    return stated[0] <= own[1] and own[0] <= stated[1]


def slot_values(record: Artwork, lexicon: Lexicon) -> dict[str, str]:
    """The values a record can put into slots; a slot it cannot fill is absent.

    Example:
        >>> from critic.writer.lexicon import Lexicon
        >>> lx = Lexicon(frozenset({"Miller"}), frozenset({"oil", "canva"}), frozenset({"american"}))
        >>> v = slot_values(Artwork(id="1", creators=["Alfred Jacob Miller"], medium="oil on canvas"), lx)
        >>> v["CREATOR"], v["MATERIAL"], v["MATERIAL2"]
        ('Alfred Jacob Miller', 'oil', 'canvas')
    """
    values: dict[str, str] = {}
    persons = lexicon.persons(record)
    materials = lexicon.materials_of(record.medium)
    culture_parts = [p.strip() for p in (record.culture or "").split(";") if p.strip()]
    cultures = culture_parts[-1:] or lexicon.attributions(record)[:1]
    date_text = (record.date_text or "").strip()
    candidates = {
        "TITLE": (record.title or "").strip(),
        "CREATOR": persons[0] if persons else "",
        "CREATOR2": persons[1] if len(persons) > 1 else "",
        "DATE": date_text if re.search(r"\d", date_text) else "",
        "CENTURY": century_phrase(record.year_start, record.year_end),
        "MEDIUM": (record.medium or "").strip(),
        "MATERIAL": materials[0] if materials else "",
        "MATERIAL2": materials[1] if len(materials) > 1 else "",
        "MATERIAL3": materials[2] if len(materials) > 2 else "",
        "CULTURE": cultures[0] if cultures else "",
        "PERIOD": (record.period or "").strip(),
        "STYLE": (record.style or "").strip(),
    }
    for slot, value in candidates.items():
        if value and value.lower() not in {"untitled", "n.d.", "unknown"}:
            values[slot] = value
    return values


def _literal_pattern(surfaces: list[str], flags: int = 0) -> re.Pattern[str] | None:
    if not surfaces:
        return None
    alternation = "|".join(re.escape(s) for s in sorted(set(surfaces), key=len, reverse=True))
    return re.compile(rf"(?<![\w<])(?:{alternation})(?![\w>])", flags)


def delexicalise(text: str, record: Artwork, lexicon: Lexicon) -> str:
    """Replace the record's own facts in ``text`` with slot tokens; other years become <OTHER_DATE>.

    Example:
        >>> from critic.writer.lexicon import Lexicon
        >>> lx = Lexicon(frozenset({"Miller"}), frozenset({"oil"}), frozenset())
        >>> r = Artwork(id="1", creators=["Alfred Jacob Miller"], date_text="1837", year_start=1837,
        ...             year_end=1837, medium="oil on canvas")
        >>> delexicalise("Miller painted this oil sketch in 1837, not in 1901.", r, lx)
        '<CREATOR> painted this <MATERIAL> sketch in <DATE>, not in <OTHER_DATE>.'
    """
    values = slot_values(record, lexicon)
    persons = lexicon.persons(record)
    cased: dict[str, str] = {}
    for slot, person in zip(("CREATOR", "CREATOR2"), persons, strict=False):
        cased[person] = slot
        for token in words(person):
            if token in lexicon.name_tokens and len(token) > 3:
                cased.setdefault(token, slot)
    if values.get("TITLE") and len(values["TITLE"]) > 3:
        cased[values["TITLE"]] = "TITLE"
    caseless: dict[str, str] = {}
    for slot in ("MEDIUM", "PERIOD", "STYLE", "DATE"):
        if values.get(slot):
            caseless[values[slot]] = slot
    for part in [p.strip() for p in (record.culture or "").split(";")] + lexicon.attributions(record):
        if len(part) > 2:
            caseless.setdefault(part, "CULTURE")
    for lookup, flags in ((cased, 0), (caseless, re.IGNORECASE)):
        pattern = _literal_pattern(list(lookup), flags)
        if pattern is not None:
            slot_of = {**{k.lower(): v for k, v in lookup.items()}, **lookup}
            text = pattern.sub(lambda m, s=slot_of: f"<{s.get(m.group(0)) or s[m.group(0).lower()]}>", text)

    def century(m: re.Match[str]) -> str:
        own = century_supported(record, m.group(1), m.group(2), m.group(3), with_description=False)
        own = own and "CENTURY" in values
        return "<CENTURY>" if own else f"<{OTHER_DATE}>"

    def year(m: re.Match[str]) -> str:
        own = year_supported(record, m.group(1), m.group(3), with_description=False) and "DATE" in values
        return "<DATE>" if own else f"<{OTHER_DATE}>"

    text = YEAR_RE.sub(year, CENTURY_RE.sub(century, text))
    materials = lexicon.materials_of(record.medium)
    material_slots = {singular(m): s for m, s in zip(materials, MATERIAL_SLOTS, strict=False)}

    def material(m: re.Match[str]) -> str:
        slot = material_slots.get(singular(m.group(0)))
        return f"<{slot}>" if slot else m.group(0)

    return re.sub(r"(?<![\w<])[A-Za-zÀ-ÿ][\w'’-]*", material, text)


def unfilled_slots(text: str) -> list[str]:
    """Slot names still present in a text."""
    return SLOT_RE.findall(text)


def fill(text: str, values: dict[str, str]) -> str:
    """Write the target's values into the slots it can fill; other slots stay as they are.

    The first <CREATOR> gets the full name and later ones the last name; a value that opens a sentence is
    capitalised.
    """
    used: set[str] = set()

    def value(m: re.Match[str]) -> str:
        slot = m.group(1)
        if slot not in values:
            return m.group(0)
        v = values[slot]
        if slot.startswith("CREATOR") and slot in used:
            v = v.split()[-1]
        used.add(slot)
        before = text[: m.start()].rstrip()
        if not before or before[-1] in ".!?":
            v = v[:1].upper() + v[1:]
        return v

    return SLOT_RE.sub(value, text)


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


def fill_or_drop(text: str, values: dict[str, str]) -> str:
    """Fill the slots; drop each sentence that keeps a slot the target cannot fill ('' if none is left)."""
    kept = [s for s in sentences(text) if all(slot in values for slot in unfilled_slots(s))]
    return fill(" ".join(kept), values)
