"""The artwork record every part of the service speaks (docs/design.md, "Records and the home")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Single-valued text fields, in the order a composed text mentions them.
TEXT_FIELDS = (
    "title",
    "date_text",
    "medium",
    "classification",
    "object_type",
    "style",
    "period",
    "culture",
    "description",
    "image_url",
    "url",
)
#: Labels the style VAE predicts from the latent and the recommendation evaluation scores.
LABEL_FIELDS = ("period", "style", "culture", "classification", "object_type")



def fold_case(text: str) -> str:
    """Case-folded with single spaces: how names and filter values compare (creators, cultures, metadata keys).

    Example:
        >>> fold_case("  Giovanni  di PAOLO ")
        'giovanni di paolo'
    """
    return " ".join(str(text).casefold().split())

@dataclass
class Artwork:
    """One artwork. ``id`` is the source catalog's own id, as a string.

    Example:
        >>> a = Artwork(id="37", title="Madonna", creators=["Giovanni Bellini"], period="Renaissance")
        >>> a.text().startswith("Madonna")
        True
    """

    id: str
    title: str = ""
    creators: list[str] = field(default_factory=list)
    date_text: str = ""
    year_start: int | None = None
    year_end: int | None = None
    medium: str = ""
    classification: str = ""
    object_type: str = ""
    style: str = ""
    period: str = ""
    culture: str = ""
    keywords: list[str] = field(default_factory=list)
    description: str = ""
    image_url: str = ""
    url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artwork:
        """Build a record from a dict with canonical keys; keys that are not fields go to ``metadata``."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        record = cls(**known)
        record.metadata = {**record.metadata, **extra}
        return record

    def composed_text(self) -> str:
        """The fields joined as plain sentences, for records without a description.

        No "Medium:"-style labels: on description-less validation records a plain join gave MiniLM higher
        precision@10 than labelled facts, and the catalogue that prompted it lost 0.14 to the labels
        (docs/results.md, "Text composition").

        Example:
            >>> Artwork(id="1", title="Tea bowl", creators=["Chojiro"], medium="earthenware").composed_text()
            'Tea bowl. Chojiro. earthenware.'
        """
        parts = [
            self.title,
            ", ".join(self.creators),
            self.date_text,
            self.medium,
            self.classification,
            self.object_type,
            self.style,
            self.period,
            self.culture,
            ", ".join(self.keywords),
        ]
        return ". ".join(p.strip().rstrip(".") for p in parts if p.strip()) + "."

    def text(self) -> str:
        """The text the sentence model embeds: title and curatorial description, else a composed text."""
        if self.description.strip():
            return f"{self.title}. {self.description.strip()}" if self.title else self.description.strip()
        return self.composed_text()

    def text_hash(self) -> str:
        return text_hash(self.text())

    def version(self) -> str:
        """Stable hash of every field (``text_hash`` covers only the embedded text): what a critique is written
        from, so a critique kept under one version is never served for another.

        Example:
            >>> Artwork(id="1", title="Vase").version() == Artwork(id="1", title="Vase", url="x").version()
            False
        """
        return text_hash(json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False))


def text_hash(text: str) -> str:
    """Stable content hash of an embedded text (the embedding cache key, with the model id)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
