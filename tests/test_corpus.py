import gzip
import json

import pytest

from critic.corpus import (
    CANONICAL_FIELDS,
    WALTERS_PATH,
    CatalogError,
    clean_description,
    import_catalog,
    load_walters,
    parse_mapping,
    years_from_date_text,
)


@pytest.fixture(scope="module")
def walters_head():
    return {record.id: record for record in load_walters(limit=300)}


@pytest.fixture(scope="module")
def walters_all():
    return load_walters()


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def reasons(result):
    return [(r.row, r.id, r.reason) for r in result.rejected]


# --- the bundled Walters collection -----------------------------------------------------------------------


def test_walters_known_record(walters_head):
    leaf = walters_head["2"]
    assert leaf.title == "Leaf from Qur'an"
    assert leaf.classification == "Manuscripts & Rare Books"
    assert leaf.period == "Safavid"
    assert leaf.culture == "Islamic"
    assert leaf.object_type == "illuminated manuscripts; folios (leaves)"
    assert leaf.creators == ["Iranian"]
    assert leaf.keywords[:4] == ["Koran", "Prayer", "Qur`an", "Arabic"]
    assert len(leaf.keywords) == 16
    assert (leaf.year_start, leaf.year_end) == (1601, 1700)
    assert leaf.date_text == "11th century AH/AD 17th century"
    assert leaf.url == "http://art.thewalters.org/detail/2"
    assert leaf.image_url.startswith("http://static.thewalters.org/images/")
    assert leaf.description == ""
    assert leaf.metadata["ObjectNumber"] == "W.569.4A"
    assert leaf.metadata["Dynasty"] == "Safavid Dynasty"
    assert leaf.metadata["creator_roles"] == ["Artist"]
    assert "Reign" not in leaf.metadata  # empty in the export


def test_walters_creator_roles_stripped_other_parentheses_kept(walters_head):
    assert walters_head["7"].creators == ["Etruscan (?)", "Italic (?)"]
    assert walters_head["22"].creators == ["Venetian"]  # "Venetian () (Artist)"
    assert walters_head["62"].creators == ["Beldam Painter (Greek, active ca. 500-ca. 450 BC) (?)"]
    wedgwood = walters_head["71"]
    assert wedgwood.creators == ["Josiah Wedgwood (English, 1730-1795)"]
    assert wedgwood.metadata["creator_roles"] == ["Manufacturer"]


def test_walters_years(walters_head):
    assert (walters_head["11"].year_start, walters_head["11"].year_end) == (-1479, -1185)
    # The export writes 0 for an unknown year; DateText "1776" fills it in.
    assert (walters_head["39"].year_start, walters_head["39"].year_end) == (1776, 1776)


def test_walters_limit_keeps_first_rows(walters_head):
    first = load_walters(limit=5)
    assert [r.id for r in first] == list(walters_head)[:5]


def test_walters_whole_collection_is_clean(walters_all):
    assert len(walters_all) == 15252
    assert len({r.id for r in walters_all}) == len(walters_all)
    for record in walters_all:
        for name in CANONICAL_FIELDS:
            value = getattr(record, name)
            if isinstance(value, str):
                assert value.lower() != "nan" and value == value.strip()
            assert not isinstance(value, float), (record.id, name)
        assert "\r" not in record.description and "<a href" not in record.description
        assert "</a>" not in record.description
    described = [r for r in walters_all if r.description]
    assert len(described) == 11243
    assert any("\n\n" in r.description for r in described)  # paragraph breaks survive


def test_walters_link_markup_reduced_to_text(walters_all):
    by_id = {r.id: r for r in walters_all}
    assert by_id["11380"].description.startswith("Wrestling matches between scantily clad women")
    assert 'Casts of "Two Women Wrestling"' in by_id["11380"].description
    # "<a>" is this catalog's transliteration mark for a long a, not markup.
    assert "<a>" in by_id["80023"].description


# --- cleaning and dates -----------------------------------------------------------------------------------


def test_clean_description():
    raw = (
        'See <a href="http://x.org" target="_blank">this cast</a>.\r\n\r\nA  second\tpara &amp; more<br/>end'
    )
    assert clean_description(raw) == "See this cast.\n\nA second para & more end"
    assert clean_description("Goupil & Cie., frightful yells, &c.") == "Goupil & Cie., frightful yells, &c."


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("1540", (1540, 1540)),
        ("ca. 1540-1550", (1540, 1550)),
        ("c. 1540-50", (1540, 1550)),
        ("350 BC", (-350, -350)),
        ("1479-1185 BC", (-1479, -1185)),
        ("ca. 500-ca. 450 BC", (-500, -450)),
        ("300 BC-AD 10", (-300, 10)),
        ("1850 to 1860", (1850, 1860)),
        ("11th century", (1000, 1099)),
        ("late 5th century BC", (-433, -401)),
        ("5th-4th century BC", (-500, -301)),
        ("early 20th century", (1900, 1932)),
        ("1st century AD", (1, 99)),
        ("10th century AH/AD 16th century", (1500, 1599)),
        ("1121 AH/AD 1717", (1717, 1717)),
        ("Made in the 19th century in Paris", (None, None)),
        ("n.d.", (None, None)),
        ("1600s", (1600, 1699)),
        ("1920s", (1920, 1929)),
        ("1925s", (None, None)),
        ("1900-1800", (None, None)),
        ("", (None, None)),
    ],
)
def test_years_from_date_text(text, years):
    assert years_from_date_text(text) == years


# --- generic import: good input ---------------------------------------------------------------------------


def test_csv_mapping_metadata_and_lists(tmp_path):
    path = write(
        tmp_path / "cat.csv",
        "Object Number,Name,Artist,Tags,Made,Notes,Empty\n"
        'A1,Bowl,"Ann (Potter) | Bob",glaze; blue,ca. 1540-1550,kept as metadata,\n',
    )
    mapping = parse_mapping("id=Object Number,title=Name,creators=Artist,keywords=Tags,date_text=Made")
    result = import_catalog(path, mapping)
    assert result.rejected == []
    [bowl] = result.records
    assert bowl.id == "A1" and bowl.title == "Bowl"
    assert bowl.creators == ["Ann", "Bob"]
    assert bowl.keywords == ["glaze", "blue"]
    assert (bowl.year_start, bowl.year_end) == (1540, 1550)
    assert bowl.metadata == {"Notes": "kept as metadata", "creator_roles": ["Potter", ""]}
    assert result.summary() == "imported 1, rejected 0"


def test_same_named_columns_map_themselves_unless_mapped(tmp_path):
    path = write(tmp_path / "cat.csv", "id,title,Label\n1,old title,new title\n")
    [record] = import_catalog(path).records
    assert record.title == "old title" and record.metadata == {"Label": "new title"}
    [record] = import_catalog(path, {"title": "Label"}).records
    assert record.title == "new title" and record.metadata == {"title": "old title"}


def test_composed_text_for_record_without_description(tmp_path):
    path = write(tmp_path / "cat.csv", "id,title,medium,culture\n9,Tea bowl,stoneware,Japanese\n")
    [record] = import_catalog(path).records
    assert record.description == ""
    assert record.text() == record.composed_text()
    assert "Tea bowl" in record.text() and "stoneware" in record.text() and "Japanese" in record.text()


def test_json_array_and_object_forms(tmp_path):
    items = [
        {
            "id": 1,
            "title": "One",
            "creators": ["Ann (Artist)", "Bob"],
            "year_start": 1540.0,
            "extra": {"a": 1},
        },
        {"id": 2.0, "title": "Two", "keywords": "x|y", "description": None, "gone": None},
    ]
    for name, payload in (("a.json", items), ("b.json", {"artworks": items})):
        result = import_catalog(write(tmp_path / name, json.dumps(payload)))
        one, two = result.records
        assert (one.id, two.id) == ("1", "2")
        assert one.creators == ["Ann", "Bob"] and one.year_start == 1540 and one.year_end is None
        assert one.metadata["extra"] == {"a": 1}
        assert two.keywords == ["x", "y"] and two.description == ""
        assert "gone" not in two.metadata


def test_gzipped_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "cat.csv.gz"
    with gzip.open(csv_path, "wt", encoding="utf-8") as f:
        f.write("id,title\n1,Vase\n2,Cup\n")
    assert [r.title for r in import_catalog(csv_path).records] == ["Vase", "Cup"]
    jsonl_path = tmp_path / "cat.ndjson.gz"
    with gzip.open(jsonl_path, "wt", encoding="utf-8") as f:
        f.write('{"id": "a", "title": "Plate"}\n\n{"id": "b", "title": "Jug"}\n')
    assert [r.id for r in import_catalog(jsonl_path).records] == ["a", "b"]


def test_tsv_and_bom(tmp_path):
    path = tmp_path / "cat.tsv"
    path.write_bytes("\ufeffid\ttitle\n1\tSword, with comma\n".encode())
    [record] = import_catalog(path).records
    assert record.id == "1" and record.title == "Sword, with comma"


def test_limit_counts_rows(tmp_path):
    path = write(tmp_path / "cat.csv", "id,title\n1,a\n,b\n3,c\n4,d\n")
    result = import_catalog(path, limit=3)
    assert [r.id for r in result.records] == ["1", "3"] and len(result.rejected) == 1


# --- generic import: bad rows are reported, the rest goes on ----------------------------------------------


def test_malformed_csv_rows_reported(tmp_path):
    path = write(
        tmp_path / "cat.csv",
        "id,title,description\n"
        '1,Good,"first line\nsecond line"\n'  # lines 2-3: a quoted field over two lines
        "2,Extra,text,surplus\n"  # line 4
        ",No id,text\n"  # line 5
        "1,Duplicate,text\n"  # line 6
        "3,,\n"  # line 7: nothing to build a text from
        "4,Short\n"  # line 8
        "5,Also good,\n",  # line 9
    )
    result = import_catalog(path)
    assert [r.id for r in result.records] == ["1", "5"]
    assert result.records[0].title == "Good"
    assert reasons(result) == [
        (4, None, "unparseable row"),
        (5, None, "missing id"),
        (6, "1", "duplicate id"),
        (7, "3", "empty text"),
        (8, None, "unparseable row"),
    ]
    assert "4 fields where the header has 3" in result.rejected[0].detail
    assert "first seen at row 2" in str(result.rejected[2])
    assert (
        result.summary()
        == "imported 2, rejected 5 (2 unparseable row, 1 missing id, 1 duplicate id, 1 empty text)"
    )


def test_an_unbalanced_quote_is_reported_where_it_opened_and_later_rows_are_kept(tmp_path):
    path = write(
        tmp_path / "cat.csv",
        "id,title,description\n"
        "1,Good,fine\n"
        '2,"Broken,its quote never closes\n'  # line 3
        "3,Third,plain\n"
        '4,"Quoted",closes the quote line 3 opened\n'
        '5,Fifth,"a field over\ntwo lines"\n',  # lines 6-7: balanced, kept
    )
    result = import_catalog(path)
    assert [r.id for r in result.records] == ["1", "3", "4", "5"]
    assert reasons(result) == [(3, None, "unparseable row")]
    assert "unbalanced quote on line 3" in result.rejected[0].detail
    assert result.records[3].description == "a field over two lines"
    # At the end of the file the quote swallows every later line: they are read again too.
    path = write(tmp_path / "end.csv", 'id,title\n1,"never closed\n2,Second\n3,Third\n')
    result = import_catalog(path)
    assert [r.id for r in result.records] == ["2", "3"]
    assert result.summary() == "imported 2, rejected 1 (1 unparseable row)"
    assert "unbalanced quote on line 2" in str(result.rejected[0])


def test_malformed_jsonl_lines_reported(tmp_path):
    path = write(
        tmp_path / "cat.jsonl",
        '{"id": 1, "title": "Good"}\n'
        '{"id": 2, "title": \n'
        "\n"
        "[1, 2]\n"
        '{"id": 1, "title": "Again"}\n'
        '{"id": 3, "medium": "oil on panel"}\n',
    )
    result = import_catalog(path)
    assert [r.id for r in result.records] == ["1", "3"]
    assert reasons(result) == [
        (2, None, "unparseable row"),
        (4, None, "unparseable row"),
        (5, "1", "duplicate id"),
    ]
    assert result.rejected[0].detail.startswith("bad JSON")


def test_empty_text_row_does_not_claim_its_id(tmp_path):
    path = write(tmp_path / "cat.csv", "id,title\n1,\n1,Later\n")
    result = import_catalog(path)
    assert [r.title for r in result.records] == ["Later"]
    assert reasons(result) == [(2, "1", "empty text")]


# --- errors that stop an import ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("title", "expected field=column"),
        ("title=", "both the field and the column"),
        ("=Title", "both the field and the column"),
        ("painter=Artist", "unknown field 'painter'"),
        ("title=A,title=B", "mapped twice"),
    ],
)
def test_parse_mapping_errors(spec, message):
    with pytest.raises(CatalogError, match=message):
        parse_mapping(spec)


def test_parse_mapping_forms():
    assert parse_mapping(None) == {}
    assert parse_mapping("Title = Name , creators=Artist, Maker") == {
        "title": "Name",
        "creators": "Artist, Maker",
    }
    assert parse_mapping(["id=ObjectID", "url=Link"]) == {"id": "ObjectID", "url": "Link"}
    with pytest.raises(CatalogError, match="valid fields: id, title, creators"):
        parse_mapping("metadata=Notes")


def test_mapped_column_missing_from_file(tmp_path):
    csv_path = write(tmp_path / "cat.csv", "id,Name\n1,x\n")
    with pytest.raises(CatalogError, match=r"no column 'Artist' \(columns: id, Name\)"):
        import_catalog(csv_path, {"creators": "Artist"})
    jsonl_path = write(tmp_path / "cat.jsonl", '{"id": 1, "Name": "x"}\n{"id": 2, "Other": "y"}\n')
    with pytest.raises(CatalogError, match=r"no column 'Artist' \(columns: id, Name, Other\)"):
        import_catalog(jsonl_path, {"creators": "Artist"})
    with pytest.raises(CatalogError, match="unknown field 'painter'"):
        import_catalog(csv_path, {"painter": "Name"})


def test_unreadable_files(tmp_path):
    cases = {
        "missing.csv": (None, "no such file"),
        "cat.xlsx": (b"id\n1\n", "unsupported format"),
        "empty.csv": (b"", "no header row"),
        "noid.csv": (b"title\nVase\n", "no id column; map one with id=COLUMN"),
        "twice.csv": (b"id,title,title\n1,a,b\n", "column 'title' appears more than once"),
        "broken.json": (b"[{", "not valid JSON"),
        "scalar.json": (b"42", "array of records"),
        "wrapped.json": (b'{"items": []}', "records, artworks, objects, data"),
        "bad.csv.gz": (b"not gzip at all", "cannot be read"),
        "latin1.csv": ("id,title\n1,caf\xe9\n".encode("latin-1"), "cannot be read"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(CatalogError, match=message) as caught:
            import_catalog(path)
        assert name in str(caught.value) and "\n" not in str(caught.value)


def test_walters_file_is_the_bundled_export():
    assert WALTERS_PATH.is_file()
    assert (WALTERS_PATH.parent / "ATTRIBUTION.md").is_file()
    assert (WALTERS_PATH.parent / "LICENSE.txt").is_file()
