"""Request and response schemas: the API validates with these models and /openapi.json is generated from them.

Bodies are JSON, validated strictly (no "10" for 10) with unknown fields refused. Query strings arrive as
text, so their models coerce ("k=10" is 10) but refuse unknown parameters too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from index.filters import KNOWN_FIELDS, LIST_FIELDS
from index.recommend import MAX_DEPTH


class Body(BaseModel):
    """A JSON request body: strict types, no unknown fields, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Params(BaseModel):
    """A query string: values are coerced from text, unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Reply(BaseModel):
    """A response document (its schema is published; the views build plain dicts of this shape)."""


# ------------------------------------------------------------------ shared field types

#: The id of a new artwork: characters that travel in a URL path unescaped.
NewArtworkId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")]
#: An id referred to (imported catalogs may use ids a new artwork could not).
ArtworkRef = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=1000)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
#: No quotes, angle brackets or whitespace: a URL is put into attributes of pages other sites show.
WebUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r'^(https?://[^\s"<>]+)?$')]
Year = Annotated[int, Field(ge=-10_000, le=10_000)]
MAX_METADATA_DEPTH = 8


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse metadata nested deeper than MAX_METADATA_DEPTH (walked without recursion: deep JSON is the attack)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return value


#: Extra fields of a record: any JSON object, at most MAX_METADATA_DEPTH levels deep.
Metadata = Annotated[dict[str, Any], AfterValidator(_shallow)]
Names = Annotated[list[ShortText], Field(max_length=200)]
QueryText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Weight = Annotated[float, Field(gt=0, le=1000)]
Examples = Annotated[list[ArtworkRef], Field(max_length=50)] | Annotated[dict[ArtworkRef, Weight], Field(max_length=50)]
FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=500)] | int
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
Tone = Literal["label", "critique", "scholarly"]

# One row per record field: (type a client may send, type stored, default). The stored type has no limits:
# records imported from a catalog may hold longer texts or relative URLs.
#: Kept in step with critic.records.Artwork by tests/test_api_validation.py.
FIELD_SPECS: dict[str, tuple[Any, Any, Any]] = {
    "title": (ShortText, str, ""),
    "creators": (Names, list[str], []),
    "date_text": (ShortText, str, ""),
    "year_start": (Year | None, int | None, None),
    "year_end": (Year | None, int | None, None),
    "medium": (ShortText, str, ""),
    "classification": (ShortText, str, ""),
    "object_type": (ShortText, str, ""),
    "style": (ShortText, str, ""),
    "period": (ShortText, str, ""),
    "culture": (ShortText, str, ""),
    "keywords": (Names, list[str], []),
    "description": (LongText, str, ""),
    "image_url": (WebUrl, str, ""),
    "url": (WebUrl, str, ""),
    "metadata": (Metadata, dict[str, Any], {}),
}
FIELD_DEFAULTS = {name: spec[2] for name, spec in FIELD_SPECS.items()}


class _YearsInOrder(BaseModel):
    @model_validator(mode="after")
    def _years_in_order(self):
        start, end = getattr(self, "year_start", None), getattr(self, "year_end", None)
        if start is not None and end is not None and start > end:
            raise ValueError(f"year_start {start} is after year_end {end}")
        return self


class _NewArtworkBase(Body, _YearsInOrder):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "demo-1",
                    "title": "Ships in a storm off a lighthouse",
                    "creators": ["Unknown Dutch painter"],
                    "date_text": "ca. 1650",
                    "year_start": 1640,
                    "year_end": 1660,
                    "medium": "oil on panel",
                    "classification": "Painting & Drawing",
                    "description": "Two ships heel in heavy seas under a dark sky while a lighthouse signals.",
                }
            ]
        }
    )

    id: NewArtworkId


NewArtwork = create_model(
    "NewArtwork",
    __base__=_NewArtworkBase,
    __doc__="An artwork to add. Only ``id`` is required; the text embedded is the title and description, "
    "or one composed from the other fields.",
    **{name: (kind, Field(default=default)) for name, (kind, _, default) in FIELD_SPECS.items()},
)


class _PatchBase(Body, _YearsInOrder):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"title": "Ships in a storm", "metadata": {"note": None}}]}
    )


ArtworkPatch = create_model(
    "ArtworkPatch",
    __base__=_PatchBase,
    __doc__="Fields to change (JSON merge patch): a field left out stays, null resets it to empty, "
    "``metadata`` is merged key by key (a null value removes the key).",
    **{name: (kind | None, Field(default=None)) for name, (kind, _, _) in FIELD_SPECS.items()},
)


class _ArtworkOutBase(Reply):
    id: str


Artwork = create_model(
    "Artwork",
    __base__=_ArtworkOutBase,
    __doc__="A stored artwork record.",
    **{name: (kind, ...) for name, (_, kind, _) in FIELD_SPECS.items()},
)


class ArtworkHit(Artwork):
    """A record in a listing; ``score`` is the text match (cosine, -1..1) when the listing searched text."""

    score: float | None


class ArtworkPage(Reply):
    query: dict[str, Any] = Field(description="The request as understood: q, where, limit, offset.")
    results: list[ArtworkHit]
    next_offset: int | None = Field(description="Offset of the next page; null on the last one.")
    total: int | None = Field(description="How many records match (null for a text search, which ranks).")


class Recommendation(Reply):
    id: str
    score: float = Field(description="Cosine similarity in the style latent, -1..1.")
    title: str
    creators: list[str]
    why: list[str] = Field(description="Why it came up: score, shared decoded attributes, shared keywords.")
    image_url: str = Field(description="The artwork's image, empty when the catalog has none.")
    url: str = Field(description="The artwork's page at its museum, empty when unknown.")


class Recommendations(Reply):
    query: dict[str, Any] = Field(description="The query as understood (filters in canonical form).")
    results: list[Recommendation]
    next_offset: int | None


class Section(Reply):
    title: str
    text: str


class Critique(Reply):
    id: str
    tone: str
    text: str
    sections: list[Section]
    evidence: dict[str, Any] = Field(description="The record fields and neighbour ids the text rests on.")


class Description(Reply):
    id: str
    text: str
    evidence: dict[str, Any] = Field(description="Drafter, source, fields used, similarity to the artwork.")


class Problem(Reply):
    """An error (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="The offending input, when there is one.")
    request_id: str | None = None


class Health(Reply):
    status: Literal["ok"]


class Readiness(Reply):
    status: Literal["ready", "loading", "failed"]
    detail: str | None = None
    artworks: int | None = None


# ------------------------------------------------------------------ query strings

_FILTER_HELP = {
    "year": "Years the artwork's span overlaps: 1450, 1400..1500, 1400.. or ..1500.",
    "year_start": "Range of the start year: 1450, 1400..1500, 1400.. or ..1500.",
    "year_end": "Range of the end year: 1450, 1400..1500, 1400.. or ..1500.",
}
#: Record fields that can be filtered on by name in a query string (``id`` only through ``where``).
FILTER_PARAMS = tuple(name for name in KNOWN_FIELDS if name != "id")


def _filter_field(name: str) -> tuple[Any, Any]:
    kind = "any element equals" if name in LIST_FIELDS else "equals"
    help_text = _FILTER_HELP.get(name, f"Only artworks whose {name} {kind} this (case-insensitive); a|b for either.")
    value = Annotated[str, StringConstraints(min_length=1, max_length=500)]
    return value | None, Field(default=None, description=help_text)


class _FilterParamsBase(Params):
    where: Annotated[list[Annotated[str, StringConstraints(max_length=500)]], Field(max_length=20)] = Field(
        default=[],
        description="Filter expressions, repeatable: field=value, field=a|b, field~text (substring), "
        "year=1400..1500, metadata.<key>=value.",
    )

    def filter_expressions(self) -> list[str]:
        """The filters asked for, as ``index.filters`` expressions: the named ones, then ``where``."""
        named = [f"{name}={getattr(self, name)}" for name in FILTER_PARAMS if getattr(self, name) is not None]
        return [*named, *self.where]


FilterParams = create_model(
    "FilterParams", __base__=_FilterParamsBase, **{name: _filter_field(name) for name in FILTER_PARAMS}
)


EXCLUDE_SAME_CREATOR = "Leave out works by the creators of the query's artworks (more like this by other artists)."
MAX_PER_CREATOR = "At most this many results by any one creator, best first, on every page."


class SimilarParams(FilterParams):
    k: int = Field(default=10, ge=1, le=100, description="How many results.")
    offset: int = Field(default=0, ge=0, lt=MAX_DEPTH, description="Results to skip (pagination).")
    diversity: float = Field(default=0.0, ge=0, le=1, description="0 ranks by similarity; up to 1 = MMR.")
    min_score: float | None = Field(default=None, ge=-1, le=1, description="Drop results scoring lower.")
    exclude: Annotated[list[ArtworkRef], Field(max_length=1000)] = Field(
        default=[], description="Ids never to return (already seen), repeatable."
    )
    exclude_same_creator: bool = Field(default=False, description=EXCLUDE_SAME_CREATOR)
    max_per_creator: int | None = Field(default=None, ge=1, le=100, description=MAX_PER_CREATOR)


class ListParams(FilterParams):
    q: QueryText | None = Field(default=None, description="Free text: rank the records by how well they match.")
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class CritiqueParams(Params):
    tone: Tone = Field(default="critique", description="label (<= 80 words), critique (~250) or scholarly.")
    seed: Seed = Field(default=0, description="The same seed gives the same text.")


# ------------------------------------------------------------------ bodies


class SimilarBody(Body):
    """Give exactly one of ``id``, ``text`` and ``like``; ``unlike`` may join any of them."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "stormy seascape with a lighthouse", "k": 5, "diversity": 0.3}]}
    )

    id: ArtworkRef | None = None
    text: QueryText | None = None
    like: Examples | None = Field(default=None, description="Liked ids, or {id: weight}.")
    unlike: Examples | None = Field(default=None, description="Disliked ids, or {id: weight}.")
    k: int = Field(default=10, ge=1, le=100)
    offset: int = Field(default=0, ge=0, lt=MAX_DEPTH)
    filters: Annotated[
        dict[str, FilterValue | Annotated[list[FilterValue], Field(max_length=50)]], Field(max_length=20)
    ] = Field(default={}, description='{field: value or [values]}, e.g. {"culture": ["French", "Italian"]}.')
    where: Annotated[list[Annotated[str, StringConstraints(max_length=500)]], Field(max_length=20)] = Field(
        default=[], description="Filter expressions as in the query string (field~text, year=1400..1500)."
    )
    diversity: float = Field(default=0.0, ge=0, le=1)
    min_score: float | None = Field(default=None, ge=-1, le=1)
    exclude: Annotated[list[ArtworkRef], Field(max_length=1000)] = []
    exclude_same_creator: bool = Field(default=False, description=EXCLUDE_SAME_CREATOR)
    max_per_creator: int | None = Field(default=None, ge=1, le=100, description=MAX_PER_CREATOR)


class _FactsBase(Body, _YearsInOrder):
    id: NewArtworkId | None = None


ArtworkFacts = create_model(
    "ArtworkFacts",
    __base__=_FactsBase,
    __doc__="Record fields of an artwork outside the collection (its description is the text).",
    **{
        name: (kind, Field(default=default))
        for name, (kind, _, default) in FIELD_SPECS.items()
        if name != "description"
    },
)


class _WriterSubject(Body):
    id: ArtworkRef | None = Field(default=None, description="An artwork of the collection.")
    text: LongText | None = Field(default=None, description="Or the description of an artwork outside it.")
    metadata: ArtworkFacts | None = Field(default=None, description="With text: what else is known of it.")
    seed: Seed = 0

    @model_validator(mode="after")
    def _one_subject(self):
        if (self.id is None) == (self.text is None):
            raise ValueError("give exactly one of id and text")
        if self.metadata is not None and self.text is None:
            raise ValueError("metadata goes with text, not with id")
        return self


class CritiqueBody(_WriterSubject):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "A bronze horse rearing on a marble base.",
                    "metadata": {"title": "Rearing horse", "medium": "bronze"},
                    "tone": "label",
                }
            ]
        }
    )

    tone: Tone = "critique"


class DescriptionBody(_WriterSubject):
    pass
