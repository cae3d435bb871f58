"""Why a recommendation came up: its score and what it shares with the query, as short readable lines."""

from __future__ import annotations

import re
from collections.abc import Mapping

from critic.records import Artwork, fold_case

#: Record fields compared between a result and the artwork it was found for, in the order lines appear.
COMPARED_FIELDS = ("period", "style", "culture", "classification", "object_type", "medium")
MAX_KEYWORDS = 6
_WORD = re.compile(r"[^\W\d_]{3,}")


def explain(
    result: Artwork,
    score: float,
    *,
    reference: Artwork | None = None,
    result_attributes: Mapping[str, str] | None = None,
    reference_attributes: Mapping[str, str] | None = None,
    query_text: str | None = None,
) -> list[str]:
    """Lines that explain ``result``: its similarity, then what it shares with ``reference`` (the query
    artwork) or, for a text query, the decoded attributes and the query words it contains.

    Example:
        >>> a = Artwork(id="1", period="Renaissance", culture="Italian", keywords=["Madonna", "gold"])
        >>> b = Artwork(id="2", period="Renaissance", culture="French", keywords=["madonna"])
        >>> for line in explain(b, 0.912, reference=a, result_attributes={"style": "Gothic"},
        ...                     reference_attributes={"style": "Gothic"}):
        ...     print(line)
        style similarity 0.91
        both decoded as style: Gothic
        same period: Renaissance
        shared keywords: madonna
    """
    lines = [f"style similarity {score:.2f}"]
    if reference is not None:
        shared = _shared_attributes(result_attributes or {}, reference_attributes or {})
        if shared:
            lines.append("both decoded as " + "; ".join(shared))
        creators = _shared(result.creators, reference.creators)
        if creators:
            lines.append("same creator: " + ", ".join(creators))
        for name in COMPARED_FIELDS:
            value = getattr(result, name)
            if value and fold_case(value) == fold_case(getattr(reference, name)):
                lines.append(f"same {name.replace('_', ' ')}: {value}")
        keywords = _shared(result.keywords, reference.keywords)
        if keywords:
            lines.append("shared keywords: " + ", ".join(keywords[:MAX_KEYWORDS]))
        return lines
    decoded = [f"{label}: {value}" for label, value in (result_attributes or {}).items() if value]
    if decoded:
        lines.append("decoded as " + "; ".join(decoded))
    if query_text:
        words = _query_words_found(result, query_text)
        if words:
            lines.append("query words found: " + ", ".join(words))
    return lines


def _shared(mine: list[str], theirs: list[str]) -> list[str]:
    """Values of ``mine`` that ``theirs`` holds too (case-insensitive), in ``mine``'s order and spelling."""
    wanted = {fold_case(v) for v in theirs}
    return list(dict.fromkeys(v for v in mine if fold_case(v) in wanted))


def _shared_attributes(mine: Mapping[str, str], theirs: Mapping[str, str]) -> list[str]:
    return [
        f"{label}: {value}"
        for label, value in mine.items()
        if value and fold_case(value) == fold_case(theirs.get(label, ""))
    ]


def _query_words_found(result: Artwork, query_text: str) -> list[str]:
    haystack = " ".join(
        [result.title, *result.keywords, *result.creators, *(getattr(result, n) for n in COMPARED_FIELDS)]
    )
    present = {w.casefold() for w in _WORD.findall(haystack)}
    return list(dict.fromkeys(w.casefold() for w in _WORD.findall(query_text) if w.casefold() in present))
