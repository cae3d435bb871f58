"""Filters on record fields: ``field=value`` expressions parsed into conditions, answered as sets of ids.

Syntax (case-insensitive, whitespace around values ignored; several conditions all have to hold):

- ``period=Renaissance``: equality; on a list field (``creators``, ``keywords``) any element equals it.
- ``culture=French|Italian``: any of the alternatives.
- ``keywords~saint``: substring, on any text or list field; ``|`` separates alternatives here too.
- ``year=1400..1500``: the artwork's span ``year_start..year_end`` overlaps the range; ``1400..``,
  ``..1500`` and a single year ``1450`` work too, negative years are BCE. ``year_start`` and ``year_end``
  take the same ranges but test the one value.
- ``metadata.<key>=value``: an extra column kept in ``Artwork.metadata`` (the key is case-insensitive too).
  A key no record holds selects nothing.

Every request costs bounded work: field names are at most MAX_NAME_CHARS long, a condition has at most
MAX_ALTERNATIVES alternatives, and all conditions together at most MAX_TOTAL_ALTERNATIVES and
MAX_TOTAL_CHARS; parsing refuses more with a FilterError before anything is looked up. An equality
alternative is a dictionary lookup, but a substring alternative scans every distinct value of its field
(about 8 ms on Walters' 15,252 descriptions), so a request may hold at most MAX_SUBSTRING_ALTERNATIVES
of those (about 0.13 s); ``is_substring`` lets a caller charge such requests as costly.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from critic.records import Artwork, fold_case
from index.errors import FilterError

LIST_FIELDS = ("creators", "keywords")
YEAR_FIELDS = ("year", "year_start", "year_end")
TEXT_FIELDS = tuple(f.name for f in fields(Artwork) if f.name not in LIST_FIELDS + YEAR_FIELDS + ("metadata",))
METADATA_PREFIX = "metadata."
KNOWN_FIELDS = TEXT_FIELDS + LIST_FIELDS + YEAR_FIELDS

MAX_NAME_CHARS = 64
MAX_ALTERNATIVES = 64
MAX_TOTAL_ALTERNATIVES = 128
MAX_TOTAL_CHARS = 4096
MAX_SUBSTRING_ALTERNATIVES = 16

_EXPRESSION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*([=~])(.*)$", re.DOTALL)
_RANGE = re.compile(r"^(-?\d+)?\s*\.\.\s*(-?\d+)?$")
_EMPTY = np.zeros(0, np.int64)


@dataclass(frozen=True)
class Condition:
    """One parsed filter: ``field``, ``op`` ("=" or "~") and its alternatives.

    Text alternatives are kept case-folded with single spaces; year alternatives are inclusive
    ``(low, high)`` ranges with ``None`` for an open end. ``str(condition)`` gives a canonical expression.
    """

    field: str
    op: str
    values: tuple[str, ...] = ()
    ranges: tuple[tuple[int | None, int | None], ...] = ()

    def __str__(self) -> str:
        if self.ranges:
            shown = [
                str(low) if low == high else f"{'' if low is None else low}..{'' if high is None else high}"
                for low, high in self.ranges
            ]
            return f"{self.field}{self.op}{'|'.join(shown)}"
        return f"{self.field}{self.op}{'|'.join(self.values)}"


def parse_where(
    where: Iterable[str] | Mapping[str, str | int | Sequence[str | int]],
) -> tuple[Condition, ...]:
    """Parse filter expressions (CLI ``--where``) or a ``{field: value or [values]}`` mapping (an API body).

    Raises FilterError on an unknown field or bad syntax.

    Example:
        >>> [str(c) for c in parse_where(["period=Renaissance", "year=1400..1500", "culture=French|Italian"])]
        ['period=renaissance', 'year=1400..1500', 'culture=french|italian']
        >>> [str(c) for c in parse_where({"keywords": ["saint", "gold"]})]
        ['keywords=saint|gold']
    """
    if isinstance(where, Mapping):
        expressions = [
            f"{name}={value if isinstance(value, str | int) else '|'.join(map(str, value))}"
            for name, value in where.items()
        ]
    elif isinstance(where, str):
        expressions = [where]
    else:
        expressions = list(where)
    _check_size(expressions)
    return tuple(_parse_one(expression) for expression in expressions)


def _check_size(expressions: Sequence[str]) -> None:
    """Refuse filters whose evaluation could cost more than the bounds allow, before any other work."""
    chars = sum(len(str(expression)) for expression in expressions)
    if chars > MAX_TOTAL_CHARS:
        raise FilterError(f"filters too long: {chars} characters, at most {MAX_TOTAL_CHARS} in one request")
    total = substrings = 0
    for expression in expressions:
        name = re.split(r"[=~]", str(expression), maxsplit=1)[0].strip()
        if len(name) > MAX_NAME_CHARS:
            raise FilterError(f"filter field name {name[:40]!r}... is longer than {MAX_NAME_CHARS} characters")
        alternatives = str(expression).count("|") + 1
        if alternatives > MAX_ALTERNATIVES:
            raise FilterError(
                f"filter on {name!r} has {alternatives} alternatives; at most {MAX_ALTERNATIVES} per filter"
            )
        total += alternatives
        substrings += alternatives if is_substring(expression) else 0
    if total > MAX_TOTAL_ALTERNATIVES:
        raise FilterError(f"filters have {total} alternatives in all; at most {MAX_TOTAL_ALTERNATIVES} in one request")
    if substrings > MAX_SUBSTRING_ALTERNATIVES:
        raise FilterError(
            f"filters have {substrings} substring (~) alternatives; at most {MAX_SUBSTRING_ALTERNATIVES} in one request"
        )


def is_substring(expression: str) -> bool:
    """Whether a filter expression is a substring match (``field~text``), which scans a whole field.

    Example:
        >>> is_substring("keywords~saint"), is_substring("title=a~b")
        (True, False)
    """
    found = re.search(r"[=~]", str(expression))
    return found is not None and found.group() == "~"


def _parse_one(expression: str) -> Condition:
    match = _EXPRESSION.match(expression)
    if not match:
        raise FilterError(f"bad filter {expression!r}: expected field=value or field~text")
    name, op, raw = match.group(1).lower(), match.group(2), match.group(3)
    if name not in KNOWN_FIELDS and not (name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX)):
        raise FilterError(f"unknown filter field {name!r}; known: {', '.join(KNOWN_FIELDS)}, metadata.<key>")
    alternatives = [part.strip() for part in raw.split("|")]
    if not all(alternatives):
        raise FilterError(f"bad filter {expression!r}: empty value")
    if name in YEAR_FIELDS:
        if op != "=":
            raise FilterError(f"bad filter {expression!r}: {name} takes a range like {name}=1400..1500")
        return Condition(name, op, ranges=tuple(_parse_range(expression, part) for part in alternatives))
    return Condition(name, op, values=tuple(fold_case(part) for part in alternatives))


def _parse_range(expression: str, text: str) -> tuple[int | None, int | None]:
    if re.fullmatch(r"-?\d+", text):
        return int(text), int(text)
    match = _RANGE.match(text)
    if not match or match.group(1) is None and match.group(2) is None:
        raise FilterError(f"bad filter {expression!r}: {text!r} is not a year or a range like 1400..1500")
    low = None if match.group(1) is None else int(match.group(1))
    high = None if match.group(2) is None else int(match.group(2))
    if low is not None and high is not None and low > high:
        raise FilterError(f"bad filter {expression!r}: range {low}..{high} is empty")
    return low, high


def field_values(record: Artwork, name: str) -> list[str]:
    """The case-folded text values a record holds in a text, list or ``metadata.<key>`` field."""
    if name.startswith(METADATA_PREFIX):
        wanted = name[len(METADATA_PREFIX) :]
        value = next((v for k, v in record.metadata.items() if k.casefold() == wanted), None)
        raw = value if isinstance(value, list | tuple) else [] if value is None else [value]
    elif name in LIST_FIELDS:
        raw = getattr(record, name)
    else:
        raw = [getattr(record, name)]
    return [v for v in (fold_case(item) for item in raw) if v]


class FilterIndex:
    """Answers conditions over records as sorted arrays of index keys, ready for the vector search's id
    selector. ``key_of`` gives a record's key (``VectorIndex.key_of``; None for a record not indexed, which
    no filter then selects). Postings per field are built the first time the field is asked for; a
    ``metadata.<key>`` that no record holds selects nothing and builds nothing.

    It reads the records from the mapping it is given; call ``update(old, new)`` whenever a record in that
    mapping, or its key, changes: after indexing a new record, before removing one from the index.

    ``select`` needs no lock held by the caller: postings are never changed in place, an update swaps in
    new ones, so a long selection runs beside writes and other queries instead of in front of them.
    """

    def __init__(self, records: Mapping[str, Artwork], key_of: Callable[[str], int | None]):
        self._records = records
        self._key_of = key_of
        self._lock = threading.Lock()  # held only to swap postings in, never while selecting
        self._version = 0  # bumped by every update: postings built across one are used once, not kept
        self._postings: dict[str, dict[str, np.ndarray]] = {}
        self._years: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._metadata_keys: Counter[str] = Counter(
            key.casefold() for record in list(records.values()) for key in record.metadata
        )

    def select(self, conditions: Sequence[Condition]) -> np.ndarray | None:
        """Sorted int64 keys of the records meeting every condition; ``None`` when there are no conditions.

        Example:
            >>> filters = FilterIndex({"7": Artwork(id="7", culture="Italian")}, key_of={"7": 0}.get)
            >>> filters.select(parse_where(["culture=italian"])).tolist()
            [0]
        """
        if not conditions:
            return None
        selected: np.ndarray | None = None
        for condition in conditions:
            matching = self._matching(condition)
            selected = matching if selected is None else np.intersect1d(selected, matching, assume_unique=True)
            if not len(selected):
                break
        return selected

    def update(self, old: Artwork | None, new: Artwork | None) -> None:
        """Keep built postings current after ``old`` was replaced by ``new`` (either may be None)."""
        old_key = None if old is None else self._key_of(old.id)
        new_key = None if new is None else self._key_of(new.id)
        with self._lock:
            self._version += 1
            self._metadata_keys.subtract(k.casefold() for k in (old.metadata if old else {}))
            self._metadata_keys.update(k.casefold() for k in (new.metadata if new else {}))
            for name, postings in list(self._postings.items()):
                if name.startswith(METADATA_PREFIX) and self._metadata_keys[name[len(METADATA_PREFIX) :]] <= 0:
                    del self._postings[name]  # no record holds the key any more
                    continue
                changed: dict[str, np.ndarray] = {}
                for value in field_values(old, name) if old is not None and old_key is not None else ():
                    held = changed.get(value, postings.get(value, _EMPTY))
                    changed[value] = held[held != old_key]
                for value in field_values(new, name) if new_key is not None else ():
                    changed[value] = np.union1d(changed.get(value, postings.get(value, _EMPTY)), [new_key])
                if changed:
                    merged = {**postings, **changed}
                    self._postings[name] = {value: keys for value, keys in merged.items() if len(keys)}
            self._metadata_keys = +self._metadata_keys  # drop keys counted down to zero
            self._years = None

    def _matching(self, condition: Condition) -> np.ndarray:
        if condition.ranges:
            return self._in_years(condition)
        postings = self._field_postings(condition.field)
        if condition.op == "=":
            arrays = [postings[value] for value in condition.values if value in postings]
        else:
            arrays = [keys for value, keys in postings.items() if any(part in value for part in condition.values)]
        if len(arrays) == 1:
            return arrays[0]
        return np.unique(np.concatenate(arrays)) if arrays else _EMPTY

    def _field_postings(self, name: str) -> Mapping[str, np.ndarray]:
        built = self._postings.get(name)
        if built is not None:
            return built
        if name.startswith(METADATA_PREFIX) and name[len(METADATA_PREFIX) :] not in self._metadata_keys:
            return {}
        version = self._version
        postings: dict[str, set[int]] = {}
        for record in list(self._records.values()):
            key = self._key_of(record.id)
            if key is not None:
                for value in field_values(record, name):
                    postings.setdefault(value, set()).add(key)
        built = {value: np.array(sorted(keys), dtype=np.int64) for value, keys in postings.items()}
        with self._lock:
            if version == self._version:
                self._postings[name] = built
        return built

    def _in_years(self, condition: Condition) -> np.ndarray:
        years = self._years
        if years is None:
            version = self._version
            records = list(self._records.values())
            keyed = sorted((key, r) for r in records if (key := self._key_of(r.id)) is not None)
            keys = np.array([key for key, _ in keyed], dtype=np.int64)
            nan = math.nan
            starts = np.array([nan if r.year_start is None else r.year_start for _, r in keyed], dtype=float)
            ends = np.array([nan if r.year_end is None else r.year_end for _, r in keyed], dtype=float)
            years = keys, starts, ends
            with self._lock:
                if version == self._version:
                    self._years = years
        keys, starts, ends = years
        # A record dated by one end only is taken as that single year.
        first_year = np.where(np.isnan(starts), ends, starts)
        last_year = np.where(np.isnan(ends), starts, ends)
        first, last = {
            "year": (first_year, last_year),
            "year_start": (starts, starts),
            "year_end": (ends, ends),
        }[condition.field]
        mask = np.zeros(len(keys), dtype=bool)
        for low, high in condition.ranges:
            # NaN compares false, so undated records never match.
            mask |= (last >= (-math.inf if low is None else low)) & (first <= (math.inf if high is None else high))
        return keys[mask]
