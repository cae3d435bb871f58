"""Synthetic catalogues of any size made of Walters texts, for build benchmarks: each record takes its fields from
different real records and its description from sentences of two or three real descriptions, under a fresh id, so
that no two records embed the same text (a duplicate would come from the embedding cache and flatter the figures).

    python bench/resampled.py 100000 /tmp/resampled.jsonl
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from critic.corpus import load_walters
from critic.records import Artwork

#: Fields taken together from one donor record (a date's text and its parsed years belong together).
FIELD_GROUPS = (
    ("title",),
    ("creators",),
    ("date_text", "year_start", "year_end"),
    ("medium",),
    ("classification", "object_type"),
    ("style", "period"),
    ("culture",),
    ("keywords",),
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def resampled_records(count: int, seed: int = 0, source: Sequence[Artwork] | None = None) -> list[Artwork]:
    """``count`` records with distinct texts, each field group from a random record of ``source`` (default: the
    bundled Walters collection); as many as in the source are described, each with one to three sentences from
    each of two or three random descriptions.

    Example:
        >>> records = resampled_records(1000)
        >>> len({r.text_hash() for r in records}), records[0].id
        (1000, 'rs0000000')
    """
    source = list(source if source is not None else load_walters())
    described = [_sentences(r.description) for r in source if r.description.strip()]
    rng = random.Random(seed)
    records: list[Artwork] = []
    seen: set[str] = set()
    while len(records) < count:
        fields: dict = {"id": f"rs{len(records):07d}"}
        for group in FIELD_GROUPS:
            donor = rng.choice(source)
            fields.update({name: getattr(donor, name) for name in group})
        if rng.choice(source).description.strip():
            donors = rng.sample(described, rng.randint(2, 3))
            fields["description"] = " ".join(_run_of_sentences(s, rng) for s in donors)
        record = Artwork(**fields)
        if record.text_hash() not in seen:
            seen.add(record.text_hash())
            records.append(record)
    return records


def write_jsonl(records: Sequence[Artwork], path: Path) -> None:
    """The records as a JSONL catalogue that `critic build --catalog` reads with no mapping."""
    with path.open("w") as handle:
        for r in records:
            handle.write(json.dumps({k: v for k, v in r.to_dict().items() if v not in ("", [], None, {})}) + "\n")


def _sentences(description: str) -> list[str]:
    return _SENTENCE_END.split(description.strip())


def _run_of_sentences(sentences: list[str], rng: random.Random) -> str:
    length = min(len(sentences), rng.randint(1, 3))
    start = rng.randrange(len(sentences) - length + 1)
    return " ".join(sentences[start : start + length])


if __name__ == "__main__":
    write_jsonl(resampled_records(int(sys.argv[1])), Path(sys.argv[2]))
