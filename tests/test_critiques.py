"""The pre-generated critiques table (critic.critiques) behaves as one on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools

import pytest

from critic.critiques import CritiqueStore, Pregenerated, Stamp, open_critiques
from critic.home import Home
from critic.sql import open_database
from critic.store import ArtworkStore

_databases = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def location(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "critiques.sqlite")
    return request.getfixturevalue("postgres").database(f"critiques_{next(_databases)}")


def critique(artwork_id: str, tone: str, seed: int, record: str, text: str) -> Pregenerated:
    stamp = Stamp(record=record, writer="writer-1", cited={"n1": "v-n1", "n2": "v-n2"})
    return Pregenerated(artwork_id, tone, seed, stamp, {"id": artwork_id, "tone": tone, "text": text})


def test_one_row_per_artwork_tone_and_seed_replaced_in_place(location):
    critiques = CritiqueStore(open_database(location))
    biggest = 2**63 - 1  # the largest seed the writer accepts
    critiques.put_many([critique("1", "label", 0, "v1", "old"), critique("1", "critique", 0, "v1", "other tone"),
                        critique("1", "label", biggest, "v1", "other seed"), critique("2", "label", 0, "v2", "two")])
    critiques.put_many([critique("1", "label", 0, "v1b", "new")])
    assert critiques.count() == 4
    found = critiques.get("1", "label", 0)
    assert found.critique["text"] == "new" and found.stamp == Stamp("v1b", "writer-1", {"n1": "v-n1", "n2": "v-n2"})
    assert critiques.get("1", "label", biggest).critique["text"] == "other seed"
    assert critiques.get("3", "label", 0) is None
    assert set(critiques.stamps(0)) == {("1", "label"), ("1", "critique"), ("2", "label")}
    assert critiques.keep_only({"2"}) == 1
    assert critiques.count() == 1 and critiques.get("1", "critique", 0) is None


def test_a_stamp_is_current_only_while_record_writer_and_every_cited_work_are_unchanged():
    stamp = Stamp("v1", "writer-1", {"n1": "v-n1", "n2": "v-n2"})
    now = {"n1": "v-n1", "n2": "v-n2"}
    assert stamp.current("v1", "writer-1", now.get)
    assert not stamp.current("v1-edited", "writer-1", now.get)
    assert not stamp.current("v1", "writer-2", now.get)
    assert not stamp.current("v1", "writer-1", {**now, "n2": "v-n2-edited"}.get)
    assert not stamp.current("v1", "writer-1", {"n1": "v-n1"}.get)  # n2 was deleted


def test_a_shared_store_keeps_its_critiques_beside_the_artworks(location, tmp_path):
    home = Home(tmp_path / "home")
    home.root.mkdir()
    store = ArtworkStore(location)
    critiques = open_critiques(home, store)
    if store.shared:  # PostgreSQL: the same database and connections as the artworks, for every node
        assert critiques.db is store.db and not home.critiques_path.exists()
    else:  # SQLite: a file of its own in the home, never the artworks' file
        assert critiques.db.location == str(home.critiques_path) != location
