"""An independent faithfulness measure for the evaluation: content words of a draft that nothing supports.

Separate code from the fact check (critic.writer.factcheck), which filters candidates: that one knows the
collection's names, materials and places; this one knows none of them and asks of every content word only
whether the record's visible fields or the text of a neighbour the draft cites contain it.

No part-of-speech tagger ships here, so content words are approximated by rules:
- numbers: any token with a digit;
- proper nouns: capitalised words that do not open a sentence;
- nouns: lower-case words of four letters or more that are not function words and do not end like an adverb,
  verb form or adjective (-ly, -ed, -ing, -ous, -ive, -ful, -able, -ible, -ical).
A word is supported when its lower-cased singular form (a trailing "s" dropped) appears among the words of
the support text; a number also when it lies within the record's years (five years' slack).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from critic.records import Artwork

_TOKEN = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’-]*|\d+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NOT_NOUN_ENDING = re.compile(r"(?:ly|ed|ing|ous|ive|ful|able|ible|ical)$")
FUNCTION_WORDS = frozenset(
    """
    about above after again against along also although among another around because been before behind
    being below beneath beside besides between beyond both could does doing down during each either every
    from have having here hers herself himself into itself just least less many more most much must near
    neither nevertheless none nothing onto other others ours over perhaps quite rather same several shall
    should since some such than that their theirs them themselves then there therefore these they this
    those though through throughout thus together toward towards under unless until upon very were what
    whatever when where whereas whether which while whom whose will with within without would your
    made make makes shows show shown depicts depict seen appears appear known called became become
    belongs belong
    """.split()
)
#: The words that name a field (the record "has a period", so "of the Baroque period" claims only the value).
FIELD_NAMES = {
    "date_text": "date", "medium": "medium material", "classification": "classification", "period": "period",
    "object_type": "object type", "style": "style", "culture": "culture origin",
}  # fmt: skip


@dataclass(frozen=True)
class ContentWord:
    word: str
    kind: str  # "number" | "proper" | "noun"


def _fold(word: str) -> str:
    word = word.lower().strip("'’-")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def content_words(text: str) -> list[ContentWord]:
    """The draft's content words by the rules above, in order.

    Example:
        >>> [(w.word, w.kind) for w in content_words("The bowl was painted in Venice in 1520.")]
        [('bowl', 'noun'), ('Venice', 'proper'), ('1520', 'number')]
    """
    out = []
    for sentence in _SENTENCE.split(text.strip()):
        for i, token in enumerate(_TOKEN.findall(sentence)):
            if token.isdigit():
                out.append(ContentWord(token, "number"))
            elif token[0].isupper():
                if i > 0 and len(token) > 1:
                    out.append(ContentWord(token, "proper"))
            elif len(token) >= 4 and token not in FUNCTION_WORDS and not _NOT_NOUN_ENDING.search(token):
                out.append(ContentWord(token, "noun"))
    return out


def visible_text(record: Artwork) -> str:
    """What a drafter may state from the record itself: every field but the description."""
    parts = [record.title, record.date_text, record.medium, record.classification, record.object_type,
             record.style, record.period, record.culture, *record.creators, *record.keywords]  # fmt: skip
    return " ".join(p for p in parts if p)


def unsupported(text: str, record: Artwork, cited: Iterable[Artwork] = ()) -> list[ContentWord]:
    """Content words of ``text`` supported neither by ``record``'s visible fields nor by the ``cited``
    neighbours' fields and descriptions.

    Example:
        >>> r = Artwork(id="1", title="Bowl", medium="bronze", year_start=1500, year_end=1530)
        >>> [w.word for w in unsupported("The bronze bowl is from Venice, 1520.", r)]
        ['Venice']
    """
    filled = [name for field, name in FIELD_NAMES.items() if getattr(record, field)]
    support_text = " ".join([visible_text(record), *filled, *(f"{visible_text(n)} {n.description}" for n in cited)])
    support = {_fold(w) for w in _TOKEN.findall(support_text)}
    years = None
    if record.year_start is not None and record.year_end is not None:
        years = sorted((record.year_start, record.year_end))
    out = []
    for w in content_words(text):
        if _fold(w.word) in support:
            continue
        if w.kind == "number" and years is not None and years[0] - 5 <= int(w.word) <= years[1] + 5:
            continue
        out.append(w)
    return out


def unsupported_rate(text: str, record: Artwork, cited: Iterable[Artwork] = ()) -> tuple[int, int]:
    """(unsupported content words, all content words) of one draft."""
    return len(unsupported(text, record, list(cited))), len(content_words(text))
