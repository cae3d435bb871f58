"""Filter expressions: parsing, errors, and the ids each kind of condition selects."""

from __future__ import annotations

import threading

import pytest

from critic.records import Artwork
from index.errors import FilterError
from index.filters import FilterIndex, parse_where

RECORDS = {
    r.id: r
    for r in [
        Artwork(
            id="1",
            title="Madonna and Child",
            period="Renaissance",
            culture="Italian",
            creators=["Giovanni Bellini"],
            keywords=["Madonna", "gold leaf"],
            year_start=1470,
            year_end=1480,
        ),
        Artwork(
            id="2",
            title="Saint George",
            period="renaissance ",
            culture="French",
            keywords=["saints", "dragon"],
            year_start=1500,
            year_end=1510,
            metadata={"Dynasty": "Valois"},
        ),
        Artwork(id="3", title="Tea bowl", period="Edo", culture="Japanese", keywords=["tea"], year_start=1700),
        Artwork(id="4", title="Amphora", period="Archaic", culture="Greek", year_start=-540, year_end=-530),
        Artwork(id="5", title="Untitled", culture="Italian", creators=["Unknown", "Giovanni Bellini"]),
        Artwork(
            id="6",
            title="Book of Hours",
            period="Gothic",
            culture="French",
            year_end=1420,
            metadata={"Dynasty": "Valois"},
        ),
    ]
}


KEYS = {artwork_id: 10 * n for n, artwork_id in enumerate(RECORDS)}  # as VectorIndex.key_of would give


def ids_of(keys) -> set[str]:
    """The record ids behind an array of index keys (which must be sorted and unique)."""
    assert list(keys) == sorted(set(keys.tolist()))
    return {i for i, key in KEYS.items() if key in set(keys.tolist())}


def select(*expressions: str) -> set[str]:
    return ids_of(FilterIndex(RECORDS, KEYS.get).select(parse_where(expressions)))


def test_the_issue_examples_parse_to_canonical_conditions():
    conditions = parse_where(["period=Renaissance", "year=1400..1500", "culture=French|Italian"])
    assert [str(c) for c in conditions] == ["period=renaissance", "year=1400..1500", "culture=french|italian"]
    assert conditions[1].ranges == ((1400, 1500),)
    assert [str(c) for c in parse_where({"culture": ["French", "Italian"], "year": 1450})] == [
        "culture=french|italian",
        "year=1450",
    ]


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("colour=red", "unknown filter field 'colour'"),
        ("period", "expected field=value"),
        ("=Renaissance", "expected field=value"),
        ("period=", "empty value"),
        ("culture=French|", "empty value"),
        ("year=fifteenth", "not a year or a range"),
        ("year=1500..1400", "is empty"),
        ("year=..", "not a year or a range"),
        ("year~1400", "takes a range"),
        ("metadata.=x", "unknown filter field"),
    ],
)
def test_bad_expressions_raise_one_line_filter_errors(expression, complaint):
    with pytest.raises(FilterError) as error:
        parse_where([expression])
    assert complaint in str(error.value) and "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_equality_is_case_and_space_insensitive_and_alternatives_are_any_of():
    assert select("period=RENAISSANCE") == {"1", "2"}
    assert select("culture=French|Japanese") == {"2", "3", "6"}
    assert select("period=Renais") == set()


def test_list_fields_match_any_element_and_substrings_work_on_text_and_lists():
    assert select("creators=giovanni bellini") == {"1", "5"}
    assert select("keywords~saint") == {"2"}
    assert select("keywords~gold|tea") == {"1", "3"}
    assert select("title~of") == {"6"}


def test_year_ranges_overlap_the_artworks_span():
    assert select("year=1400..1500") == {"1", "2", "6"}  # 2 starts in 1500, 6 is dated by its end only
    assert select("year=1475") == {"1"}
    assert select("year=..0") == {"4"}
    assert select("year=1600..") == {"3"}
    assert select("year=1420|1505") == {"2", "6"}
    assert select("year_start=1470..1500") == {"1", "2"}
    assert select("year_end=1420") == {"6"}


def test_metadata_fields_and_conjunction():
    assert select("metadata.dynasty=valois") == {"2", "6"}
    assert select("culture=French", "year=1400..1450") == {"6"}
    assert select("culture=French", "period=Edo") == set()
    assert FilterIndex(RECORDS, KEYS.get).select(()) is None


def test_records_without_a_key_are_never_selected():
    unindexed = {i: k for i, k in KEYS.items() if i != "1"}
    filters = FilterIndex(RECORDS, unindexed.get)
    assert filters.select(parse_where(["period=renaissance"])).tolist() == [KEYS["2"]]
    assert filters.select(parse_where(["year=1470..1480"])).tolist() == []


def test_update_keeps_built_postings_true():
    records = dict(RECORDS)
    keys = dict(KEYS)
    filters = FilterIndex(records, keys.get)
    assert ids_of(filters.select(parse_where(["culture=Italian"]))) == {"1", "5"}
    assert ids_of(filters.select(parse_where(["year=1470"]))) == {"1"}
    new = Artwork(id="7", culture="Italian", year_start=1470)
    changed = Artwork(id="1", culture="Venetian", year_start=1300)
    keys["7"] = 70  # indexed first, then announced
    for old, record in ((None, new), (records["1"], changed)):
        records[record.id] = record
        filters.update(old, record)
    del records["5"]
    filters.update(RECORDS["5"], None)  # announced while its key is still known
    del keys["5"]
    assert filters.select(parse_where(["culture=Italian"])).tolist() == [70]
    assert filters.select(parse_where(["culture=Venetian"])).tolist() == [KEYS["1"]]
    assert filters.select(parse_where(["year=1470"])).tolist() == [70]


@pytest.mark.parametrize(
    "where, complaint",
    [
        (["description~" + "|".join(f"qz{n}" for n in range(3000))], "at most 4096"),  # the issue's request
        (["description~" + "|".join(f"qz{n}" for n in range(65))], "at most 64 per filter"),
        ({"culture": [f"c{n}" for n in range(65)]}, "at most 64 per filter"),
        ([f"title~{'|'.join('a' * 60)}", f"medium~{'|'.join('b' * 60)}", "culture=x|y|z|w|v|u|t|s|r"], "at most 128"),
        (["metadata." + "k" * 70 + "=x"], "longer than 64 characters"),
        (["title~" + "|".join("abcdefghi"), "medium~" + "|".join("abcdefgh")], "at most 16 in one request"),
        ([f"title~{'x' * 500}"] * 9, "at most 4096"),
    ],
)
def test_costly_filters_are_refused_before_any_work(where, complaint):
    class Untouchable(dict):  # a selection would read the records: refusing must not get that far
        armed = False

        def values(self):
            if self.armed:
                raise AssertionError("the filter was evaluated")
            return super().values()

    records = Untouchable(RECORDS)
    filters = FilterIndex(records, KEYS.get)
    records.armed = True
    with pytest.raises(FilterError, match=complaint):
        filters.select(parse_where(where))


def test_an_unknown_metadata_key_selects_nothing_and_is_not_kept():
    records = dict(RECORDS)
    filters = FilterIndex(records, KEYS.get)
    for n in range(50):
        assert filters.select(parse_where([f"metadata.nobody_has_{n}=x"])).tolist() == []
    assert not [name for name in filters._postings if "nobody_has" in name]
    assert ids_of(filters.select(parse_where(["metadata.dynasty=valois"]))) == {"2", "6"}
    # A key that arrives with a new record is known from then on; one that leaves with its last record is dropped.
    keys_7 = {**KEYS, "7": 70}
    filters = FilterIndex(records, keys_7.get)
    records["7"] = Artwork(id="7", metadata={"Workshop": "Limoges"})
    filters.update(None, records["7"])
    assert filters.select(parse_where(["metadata.workshop=limoges"])).tolist() == [70]
    filters.update(records.pop("7"), None)
    assert filters.select(parse_where(["metadata.workshop=limoges"])).tolist() == []
    assert "metadata.workshop" not in filters._postings


def test_selections_run_beside_updates():
    records = {f"r{n}": Artwork(id=f"r{n}", culture="Italian" if n % 2 else "French") for n in range(2000)}
    keys = {artwork_id: n for n, artwork_id in enumerate(records)}
    filters = FilterIndex(records, keys.get)
    filters.select(parse_where(["culture=italian"]))
    stop = threading.Event()

    def churn():
        n = 0
        while not stop.is_set():
            old = records[f"r{n % 2000}"]
            new = Artwork(id=old.id, culture="Italian" if old.culture == "French" else "French")
            records[old.id] = new
            filters.update(old, new)
            n += 1

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for _ in range(200):
            selected = filters.select(parse_where(["culture=italian|french"]))
            assert len(selected) == 2000 and list(selected) == sorted(selected)
    finally:
        stop.set()
        writer.join()
