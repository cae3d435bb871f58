"""Catalog import: CSV, JSON or JSONL files (optionally gzipped) -> artwork records.

The bundled Walters collection goes through the same importer as any other catalog, with its own column
mapping. Bad rows are counted and reported with their reasons; they never stop the rest of the import.

Example:
    >>> result = import_catalog("objects.csv", parse_mapping("id=ObjectID,title=Title"))  # doctest: +SKIP
    >>> result.summary()  # doctest: +SKIP
    'imported 980, rejected 3 (2 duplicate id, 1 missing id)'
"""

from __future__ import annotations

import collections
import csv
import gzip
import html
import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from itertools import islice
from pathlib import Path
from typing import IO, Any

from critic.records import Artwork

#: Field names a catalog column can map onto (everything else is kept as metadata).
CANONICAL_FIELDS = tuple(f.name for f in fields(Artwork) if f.name != "metadata")
#: Fields that give a record without a description enough to compose a text from (a date alone does not).
COMPOSABLE_FIELDS = (
    "title",
    "creators",
    "object_type",
    "medium",
    "classification",
    "style",
    "period",
    "culture",
    "keywords",
)

WALTERS_PATH = Path(__file__).parent / "data" / "walters" / "objects_flat.csv.gz"
WALTERS_MAPPING = {
    "id": "ObjectID",
    "title": "Title",
    "creators": "Creators",
    "date_text": "DateText",
    "year_start": "DateBeginYear",
    "year_end": "DateEndYear",
    "medium": "Medium",
    "classification": "Classification",
    "object_type": "ObjectName",
    "style": "Style",
    "period": "Period",
    "culture": "Culture",
    "keywords": "Keywords",
    "description": "Description",
    "image_url": "PrimaryImageRaw",
    "url": "ResourceURL",
}

# Roles a catalog appends to a creator's name, as in "Josiah Wedgwood (English, 1730-1795) (Manufacturer)".
# A closed list, so that a trailing "(Dutch)" or "(?)" in another catalog stays part of the name.
CREATOR_ROLES = frozenset(
    role.strip().casefold()
    for role in (
        "Architect, Artist, Author, Binder, Cabinetmaker, Calligrapher, Carver, Ceramicist, Clockmaker, "
        "Compiler, Decorator, Designer, Distributor, Draftsman, Draughtsman, Editor, Embroiderer, Enameler, "
        "Enameller, Engraver, Etcher, Founder, Gilder, Glassmaker, Goldsmith, Illuminator, Illustrator, "
        "Jeweler, Jeweller, Lithographer, Lusterer, Maker, Manufacturer, Master Craftsman, Metalworker, "
        "Modeler, Modeller, Other, Painter, Patron, Photographer, Potter, Printer, Printmaker, Publisher, "
        "Repairer, Scribe, Sculptor, Silversmith, Translator, Weaver, Woodcarver, Workmaster, Workshop"
    ).split(",")
)

_TRAILING_PAREN = re.compile(r"\s*\(([^()]*)\)\s*$")
_EMPTY_PARENS = re.compile(r"\s*\(\s*\)")
_LIST_SEPARATORS = re.compile(r"[|;]")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PARAGRAPH_TAG = re.compile(r"</?p(\s[^<>]*)?>", re.IGNORECASE)
# Closing tags and tags with attributes only: some catalogs (the Walters among them) write transliteration
# marks such as "<a>" (a long a) and "<'>" (hamza) in descriptions, which are text, not markup.
_MARKUP_TAG = re.compile(r"</[a-zA-Z][a-zA-Z0-9]*\s*>|<[a-zA-Z][a-zA-Z0-9]*\s+[^<>]*>")
# Only entities with their semicolon: "&c." and "Goupil & Cie." are text.
_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);")
_ERA = r"(BCE|BC|B\.C\.E\.|B\.C\.|CE|AD|A\.D\.|C\.E\.)"
_QUALIFIER = r"(?:ca\.?|c\.|circa|about|around)"
_PLAIN_YEARS = re.compile(
    rf"^{_QUALIFIER}?\s*(?:{_ERA}\s*)?(\d{{1,4}})\s*{_ERA}?"
    rf"(?:\s*(?:-|–|—|to)\s*{_QUALIFIER}?\s*(?:{_ERA}\s*)?(\d{{1,4}})\s*{_ERA}?)?$",
    re.IGNORECASE,
)
# "late 11th century AH/AD 17th century" and "1121 AH/AD 1717": the Hijri part goes, the AD part stays.
_HIJRI = re.compile(r"\b\d{1,4}(?:st|nd|rd|th)?(?: century)? AH/(?=AD )", re.IGNORECASE)
_DECADE = re.compile(rf"^{_QUALIFIER}?\s*(\d{{3,4}})s$", re.IGNORECASE)
_CENTURY = re.compile(
    r"(?P<q>early|mid|late)?[\s-]*(?:(?P<pre>BCE|BC|AD|CE)\s*)?(?P<n>\d{1,2})(?:st|nd|rd|th)"
    r"(?:\s*(?:-|–|to)\s*(?=\d))?(?:[\s-]*century)?(?:\s*(?P<post>BCE|BC|B\.C\.|AD|A\.D\.|CE)\b)?",
    re.IGNORECASE,
)
#: Which years of a century "early", "mid" and "late" cover.
_THIRDS = {"early": (0, 32), "mid": (33, 66), "late": (67, 99)}
_MAPPING_PAIR_SEPARATOR = re.compile(r",(?=\s*[A-Za-z_]+\s*=)")

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_JSON_RECORD_KEYS = ("records", "artworks", "objects", "data")


class CatalogError(ValueError):
    """A catalog that cannot be imported at all, or a bad column mapping (one readable line)."""


@dataclass(frozen=True)
class Rejection:
    """A row left out of an import.

    ``row`` is the line where the row starts in a CSV or JSONL file (the CSV header is line 1), or the
    1-based position in a JSON array. ``reason`` is one of a few categories ("missing id", "duplicate id",
    "unparseable row", "empty text"); ``detail`` says more.
    """

    row: int
    id: str | None
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        where = f"row {self.row}" + (f" (id {self.id!r})" if self.id else "")
        return f"{where}: {self.reason}" + (f": {self.detail}" if self.detail else "")


@dataclass
class ImportResult:
    records: list[Artwork] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def summary(self) -> str:
        """One line, e.g. "imported 98, rejected 3 (2 duplicate id, 1 missing id)"."""
        line = f"imported {len(self.records)}, rejected {len(self.rejected)}"
        if not self.rejected:
            return line
        counts = Counter(r.reason for r in self.rejected).most_common()
        return line + " (" + ", ".join(f"{n} {reason}" for reason, n in counts) + ")"


@dataclass
class _RawRow:
    row: int
    values: dict[str, Any] | None
    error: str = ""


def load_walters(limit: int | None = None) -> list[Artwork]:
    """The bundled Walters Art Museum collection (15,252 records); ``limit`` keeps the first N rows."""
    return import_catalog(WALTERS_PATH, WALTERS_MAPPING, limit=limit).records


def parse_mapping(spec: str | Sequence[str] | None) -> dict[str, str]:
    """Parse ``--map`` specs such as "title=Name,creators=Artist" into {canonical field: column}.

    Example:
        >>> parse_mapping(["id=Object Number", "title=Title,creators=Artist"])
        {'id': 'Object Number', 'title': 'Title', 'creators': 'Artist'}
    """
    specs = [] if spec is None else [spec] if isinstance(spec, str) else list(spec)
    mapping: dict[str, str] = {}
    for item in specs:
        for pair in _MAPPING_PAIR_SEPARATOR.split(item):
            if not pair.strip():
                continue
            if "=" not in pair:
                raise CatalogError(f"bad mapping {pair.strip()!r}: expected field=column, e.g. title=Title")
            canonical, column = (part.strip() for part in pair.split("=", 1))
            if not canonical or not column:
                raise CatalogError(f"bad mapping {pair.strip()!r}: both the field and the column need a name")
            canonical = canonical.lower()
            if canonical in mapping and mapping[canonical] != column:
                raise CatalogError(
                    f"field {canonical!r} is mapped twice ({mapping[canonical]!r}, {column!r})"
                )
            mapping[canonical] = column
    _check_canonical(mapping)
    return mapping


def import_catalog(
    path: str | Path, mapping: dict[str, str] | None = None, limit: int | None = None
) -> ImportResult:
    """Import a CSV/TSV, JSON or JSONL/NDJSON catalog (each optionally .gz), chosen by extension.

    ``mapping`` maps canonical field names to the file's columns; columns already named like a canonical
    field map to themselves; every other column is kept in ``metadata``. ``limit`` reads the first N rows.
    Raises CatalogError when the file cannot be imported at all; bad rows are reported in the result.
    """
    path = Path(path)
    mapping = dict(mapping or {})
    _check_canonical(mapping)
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    kind = _format_of(path)
    result = ImportResult()
    try:
        with _open_text(path) as stream:
            columns, rows = _READERS[kind](stream)
            column_for = _column_plan(columns, mapping)
            _import_rows(islice(rows, limit), column_for, columns, result)
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read: {exc}") from exc
    return result


def years_from_date_text(text: str) -> tuple[int | None, int | None]:
    """First and last year of a date text: plain years, decades ("1920s"), centuries ("late 15th century",
    "5th-4th century BC"; a Hijri date's AD part); (None, None) when unsure.

    Example:
        >>> years_from_date_text("ca. 1540-50"), years_from_date_text("350 BC")
        ((1540, 1550), (-350, -350))
        >>> years_from_date_text("late 15th century"), years_from_date_text("1600s")
        ((1467, 1499), (1600, 1699))
        >>> years_from_date_text("10th century AH/AD 16th century"), years_from_date_text("n.d.")
        ((1500, 1599), (None, None))
    """
    text = _HIJRI.sub("", text.strip())
    match = _PLAIN_YEARS.match(text)
    if not match:
        return _decade_or_centuries(text)
    era_before, first, era_after, era2_before, second, era2_after = match.groups()
    era1, era2 = era_before or era_after, era2_before or era2_after
    start = int(first)
    if second is None:
        end, era2 = start, era1
    else:
        end = int(second)
        era1, era2 = era1 or era2, era2 or era1
        if not (_is_bc(era1) or _is_bc(era2)) and end < start and len(second) < len(first):
            # "1540-50": the second year repeats the first one's leading digits.
            end = int(first[: len(first) - len(second)] + second)
    if start == 0 or end == 0:
        return None, None
    start, end = (-start if _is_bc(era1) else start), (-end if _is_bc(era2) else end)
    return (start, end) if start <= end else (None, None)


def _decade_or_centuries(text: str) -> tuple[int | None, int | None]:
    decade = _DECADE.match(text)
    if decade:
        year = int(decade.group(1))
        return (year, year + (99 if year % 100 == 0 else 9)) if year % 10 == 0 else (None, None)
    found = list(_CENTURY.finditer(text))
    if not found or _CENTURY.sub("", text).strip(" -–—,;/?.()") not in ("", "to", "or", "and"):
        return None, None
    def era(match: re.Match) -> str | None:
        return match.group("pre") or match.group("post")

    bc = _is_bc(era(found[-1]))  # "5th-4th century BC": the era written last holds for both
    spans = []
    for match in found:
        qualifier, number = (match.group("q") or "").lower(), int(match.group("n"))
        if number < 1:
            return None, None
        first, last = _THIRDS.get(qualifier, (0, 99))
        era_bc = _is_bc(era(match)) if era(match) else bc
        if era_bc:  # the 5th century BC runs from 500 to 401 BC
            spans.append((-(number * 100) + first, -(number * 100) + last))
        else:  # the 15th century runs from 1400 to 1499 (the 1st from AD 1: there is no year 0)
            spans.append((max(1, (number - 1) * 100 + first), (number - 1) * 100 + last))
    return min(s for s, _ in spans), max(e for _, e in spans)


def clean_description(text: str) -> str:
    """Drop HTML markup and entities, normalise whitespace, keep paragraph breaks as blank lines."""
    text = _LINE_BREAK_TAG.sub("\n", text)
    text = _PARAGRAPH_TAG.sub("\n\n", text)
    text = _MARKUP_TAG.sub("", text)
    text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text))
    return "\n\n".join(p for p in paragraphs if p)


def _check_canonical(mapping: dict[str, str]) -> None:
    unknown = sorted(set(mapping) - set(CANONICAL_FIELDS))
    if unknown:
        raise CatalogError(
            f"unknown field {unknown[0]!r} in mapping; valid fields: {', '.join(CANONICAL_FIELDS)}"
        )


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    kind = _FORMATS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise CatalogError(
            f"{path}: unsupported format; use .csv, .tsv, .json, .jsonl or .ndjson (optionally .gz)"
        )
    return kind


def _open_text(path: Path) -> IO[str]:
    # utf-8-sig drops the byte-order mark that spreadsheet exports often start with.
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


class _Lines:
    """The lines csv.reader reads, numbered, with the ones a row consumed kept so they can be read again."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.pending: collections.deque[str] = collections.deque()
        self.taken: list[str] = []
        self.number = 0  # of the last line handed out

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.pending.popleft() if self.pending else next(self.stream)
        self.number += 1
        self.taken.append(line)
        return line

    def read_again(self, first: int) -> None:
        """Hand out the taken lines after line ``first`` once more."""
        self.pending.extendleft(reversed(self.taken[1:]))
        self.number = first


def _read_delimited(stream: IO[str], delimiter: str) -> tuple[list[str], Iterator[_RawRow]]:
    # The csv module, not pandas: pandas pads short rows silently and its bad-line callback gets no line
    # number, while a row with the wrong number of fields must be reported where it is.
    lines = _Lines(stream)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CatalogError(f"unreadable header row: {exc}") from exc
    if not header:
        raise CatalogError("the file is empty: no header row")
    columns = [name.strip() for name in header]
    repeated = [name for name, n in Counter(columns).items() if n > 1]
    if repeated:
        raise CatalogError(f"column {repeated[0]!r} appears more than once in the header")

    def rows() -> Iterator[_RawRow]:
        while True:
            start = lines.number + 1
            lines.taken = []
            try:
                values, error = next(reader), ""
            except StopIteration:
                return
            except csv.Error as exc:
                values, error = None, str(exc)
            if values is not None and not values:
                continue
            if values is not None and len(values) != len(columns):
                values, error = None, f"{len(values)} fields where the header has {len(columns)}"
            quotes = [line.count('"') for line in lines.taken]
            if len(lines.taken) > 1 and (values is None or sum(quotes) % 2):
                # A quote that never closes swallows the lines after it into one row: report where it opened,
                # then read those lines again as rows of their own.
                opened = next((n for n, count in enumerate(quotes, start) if count % 2), start)
                yield _RawRow(
                    start,
                    None,
                    f"unbalanced quote on line {opened} (the row ran on to line {lines.number}); "
                    f"the lines after line {start} were read again",
                )
                lines.read_again(start)
            elif values is None:
                yield _RawRow(start, None, error)
            else:
                yield _RawRow(start, dict(zip(columns, values, strict=True)))

    return columns, rows()


def _read_csv(stream: IO[str]) -> tuple[list[str], Iterator[_RawRow]]:
    return _read_delimited(stream, ",")


def _read_tsv(stream: IO[str]) -> tuple[list[str], Iterator[_RawRow]]:
    return _read_delimited(stream, "\t")


def _read_json(stream: IO[str]) -> tuple[list[str], Iterator[_RawRow]]:
    try:
        data = json.load(stream)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        key = next((k for k in _JSON_RECORD_KEYS if isinstance(data.get(k), list)), None)
        if key is None:
            raise CatalogError(
                f"a JSON object needs a list of records under one of: {', '.join(_JSON_RECORD_KEYS)}"
            )
        data = data[key]
    if not isinstance(data, list):
        raise CatalogError("JSON must hold an array of records or an object with one")
    rows = [_json_row(position, item) for position, item in enumerate(data, start=1)]
    return _columns_of(rows), iter(rows)


def _read_jsonl(stream: IO[str]) -> tuple[list[str], Iterator[_RawRow]]:
    rows = []
    for line_number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(_RawRow(line_number, None, f"bad JSON: {exc}"))
            continue
        rows.append(_json_row(line_number, item))
    return _columns_of(rows), iter(rows)


def _json_row(row: int, item: Any) -> _RawRow:
    if isinstance(item, dict):
        return _RawRow(row, {str(k).strip(): v for k, v in item.items()})
    return _RawRow(row, None, f"a JSON {type(item).__name__} where a record (object) belongs")


def _columns_of(rows: Iterable[_RawRow]) -> list[str]:
    columns: dict[str, None] = {}
    for raw in rows:
        columns.update(dict.fromkeys(raw.values or ()))
    return list(columns)


_READERS = {"csv": _read_csv, "tsv": _read_tsv, "json": _read_json, "jsonl": _read_jsonl}


def _column_plan(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """{canonical field: column}: same-named columns first, the explicit mapping over them."""
    column_for = {name: name for name in CANONICAL_FIELDS if name in columns}
    column_for.update(mapping)
    listed = ", ".join(columns) if columns else "none"
    missing = [column for column in mapping.values() if column not in columns]
    if missing:
        raise CatalogError(f"no column {missing[0]!r} (columns: {listed})")
    if "id" not in column_for:
        raise CatalogError(f"no id column; map one with id=COLUMN (columns: {listed})")
    return column_for


def _import_rows(
    rows: Iterable[_RawRow], column_for: dict[str, str], columns: list[str], result: ImportResult
) -> None:
    used = set(column_for.values())
    extra_columns = [column for column in columns if column not in used]
    plan = [(name, column, _CONVERTERS.get(name, _as_text)) for name, column in column_for.items()]
    first_row_of: dict[str, int] = {}
    for raw in rows:
        if raw.values is None:
            result.rejected.append(Rejection(raw.row, None, "unparseable row", raw.error))
            continue
        record = _record_from(raw.values, plan, extra_columns)
        if not record.id:
            result.rejected.append(Rejection(raw.row, None, "missing id"))
        elif record.id in first_row_of:
            detail = f"first seen at row {first_row_of[record.id]}"
            result.rejected.append(Rejection(raw.row, record.id, "duplicate id", detail))
        elif not (record.description or any(getattr(record, name) for name in COMPOSABLE_FIELDS)):
            detail = "no description and nothing to compose a text from"
            result.rejected.append(Rejection(raw.row, record.id, "empty text", detail))
        else:
            first_row_of[record.id] = raw.row
            result.records.append(record)


def _record_from(
    values: dict[str, Any], plan: list[tuple[str, str, Callable[[Any], Any]]], extra_columns: list[str]
) -> Artwork:
    fields_ = {name: convert(values.get(column)) for name, column, convert in plan}
    metadata = {column: _metadata_value(values.get(column)) for column in extra_columns}
    if "creators" in fields_:
        fields_["creators"], roles = _split_roles(fields_["creators"])
        if any(roles):
            metadata["creator_roles"] = roles
    record = Artwork(**fields_, metadata={k: v for k, v in metadata.items() if v not in (None, "")})
    _fill_years_from_date_text(record)
    return record


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    if _is_missing(value):
        return ""
    if isinstance(value, list):
        return "; ".join(text for text in map(_as_text, value) if text)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def _as_description(value: Any) -> str:
    return clean_description(value if isinstance(value, str) else _as_text(value))


def _as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else _LIST_SEPARATORS.split(_as_text(value))
    return [text for text in map(_as_text, items) if text]


def _as_year(value: Any) -> int | None:
    text = _as_text(value)
    try:
        year = float(text)
    except ValueError:
        return None
    # There is no year 0 between 1 BC and AD 1: catalogs (the Walters among them) write 0 for "unknown".
    return int(year) if year.is_integer() and year != 0 else None


def _metadata_value(value: Any) -> Any:
    if _is_missing(value):
        return None
    return _as_text(value) if isinstance(value, str) else value


def _split_roles(creators: list[str]) -> tuple[list[str], list[str]]:
    """Split "Name (Artist)" into ("Name", "Artist"); other trailing parentheses stay in the name."""
    names, roles = [], []
    for creator in creators:
        name, role = _EMPTY_PARENS.sub("", creator).strip(), ""
        match = _TRAILING_PAREN.search(name)
        if match and match.group(1).strip().casefold() in CREATOR_ROLES and match.start() > 0:
            name, role = name[: match.start()].strip(), match.group(1).strip()
        if name:
            names.append(name)
            roles.append(role)
    return names, roles


def _fill_years_from_date_text(record: Artwork) -> None:
    if record.year_start is not None and record.year_end is not None:
        return
    start, end = years_from_date_text(record.date_text)
    if start is None or end is None:
        return
    start = record.year_start if record.year_start is not None else start
    end = record.year_end if record.year_end is not None else end
    if start <= end:
        record.year_start, record.year_end = start, end


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "creators": _as_list,
    "keywords": _as_list,
    "year_start": _as_year,
    "year_end": _as_year,
    "description": _as_description,
}


def _is_bc(era: str | None) -> bool:
    return bool(era) and era.replace(".", "").upper() in ("BC", "BCE")
