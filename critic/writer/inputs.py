"""Checking what a caller asks the writer for: a text, metadata, a tone and a seed."""

from __future__ import annotations

from typing import Any

from critic.records import Artwork

TONES = ("label", "critique", "scholarly")
MAX_TEXT_CHARS = 20_000
NEW_ARTWORK_ID = "new"
_LIST_FIELDS = ("creators", "keywords")
_YEAR_FIELDS = ("year_start", "year_end")


class WriterInputError(ValueError):
    """Empty, absurd or unknown input to the writer; the message is one line meant for the user."""


def check_tone(tone: str) -> str:
    if tone not in TONES:
        raise WriterInputError(f"unknown tone {tone!r}: choose one of {', '.join(TONES)}")
    return tone


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise WriterInputError(f"seed must be a non-negative integer, got {seed!r}")
    return seed


def check_text(text: Any) -> str:
    """The text of a new artwork, stripped; refuses empty, oversized and word-less input."""
    if not isinstance(text, str):
        raise WriterInputError(f"text must be a string, got {type(text).__name__}")
    text = " ".join(text.split())
    if not text:
        raise WriterInputError("text is empty: describe the artwork in a few words")
    if len(text) > MAX_TEXT_CHARS:
        raise WriterInputError(f"text is too long ({len(text):,} characters; at most {MAX_TEXT_CHARS:,})")
    if sum(ch.isalpha() for ch in text) < 2:
        raise WriterInputError("text has no words, only punctuation, digits or symbols")
    return text


def artwork_from_text(text: Any, metadata: dict[str, Any] | None = None) -> Artwork:
    """A record for an artwork outside the collection: its text becomes the description.

    ``metadata`` may hold any record field (title, creators, date_text, year_start, medium, ...); other keys
    are kept as metadata.

    Example:
        >>> artwork_from_text("A bronze horse", {"title": "Horse", "year_start": 1550}).year_start
        1550
    """
    description = check_text(text)
    if metadata is not None and not isinstance(metadata, dict):
        raise WriterInputError("metadata must be an object of field: value pairs")
    metadata = dict(metadata or {})
    for name in _LIST_FIELDS:
        value = metadata.get(name)
        if isinstance(value, str):
            metadata[name] = [v.strip() for v in value.split(";") if v.strip()]
        elif value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise WriterInputError(f"metadata field {name!r} must be a list of strings or a ';'-separated string")
    for name in _YEAR_FIELDS:
        value = metadata.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise WriterInputError(f"metadata field {name!r} must be an integer year, got {value!r}")
    for name, value in metadata.items():
        plain = name not in (*_LIST_FIELDS, *_YEAR_FIELDS, "metadata")
        if plain and value is not None and not isinstance(value, str):
            metadata[name] = str(value)
        if isinstance(metadata[name], str) and len(metadata[name]) > MAX_TEXT_CHARS:
            raise WriterInputError(f"metadata field {name!r} is too long")
    metadata.pop("description", None)
    record_id = str(metadata.pop("id", NEW_ARTWORK_ID) or NEW_ARTWORK_ID)
    return Artwork.from_dict({**metadata, "id": record_id, "description": description})
