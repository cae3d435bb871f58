import sqlite3
import threading

import pytest

from critic.records import Artwork
from critic.store import ArtworkStore, Outcome, StoreError

_databases = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def location(request, tmp_path) -> str:
    """A new, empty store's location: an SQLite file, or a database on the session's PostgreSQL server.
    The store's behaviour is one, whichever engine holds it."""
    if request.param == "sqlite":
        return str(tmp_path / "a.sqlite")
    return request.getfixturevalue("postgres").database(f"store_{next(_databases)}")


def test_upsert_get_delete_round_trip(location):
    store = ArtworkStore(location)
    store.upsert_many([Artwork(id="1", title="Vase", keywords=["pot"]), Artwork(id="2", title="Bowl")])
    store.upsert_many([Artwork(id="1", title="Amphora", metadata={"Dynasty": "Ming"})])
    assert store.count() == 2
    assert store.get("1").title == "Amphora"
    assert store.get("1").metadata == {"Dynasty": "Ming"}
    assert store.ids() == ["1", "2"]
    assert [r.title for r in store.get_many(["2", "nope", "1", "2"])] == ["Bowl", "Amphora"]
    assert store.delete("2") is True
    assert store.delete("2") is False
    assert store.get("2") is None


def test_failed_write_changes_nothing(location):
    store = ArtworkStore(location)
    store.upsert_many([Artwork(id="1", title="Vase")])

    class Unserialisable(Artwork):
        def to_dict(self):
            raise TypeError("cannot serialise")

    with pytest.raises(TypeError):
        store.upsert_many([Artwork(id="2", title="Bowl"), Unserialisable(id="3")])
    assert store.ids() == ["1"]


def test_writes_are_visible_to_a_second_connection(tmp_path):
    path = tmp_path / "a.sqlite"
    ArtworkStore(path).upsert_many([Artwork(id="9", title="Lamp")])
    assert ArtworkStore(path).get("9").title == "Lamp"
    (mode,) = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_damaged_database_is_a_clear_error(tmp_path):
    path = tmp_path / "a.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="critic repair"):
        ArtworkStore(path)


def test_changes_log_lets_another_process_catch_up(location):
    store = ArtworkStore(location)
    store.upsert_many([Artwork(id="1"), Artwork(id="2")])
    seq, changed = store.changes_since(0)
    assert changed == ["1", "2"]
    store.delete("1")
    store.upsert_many([Artwork(id="3")])
    latest, changed = ArtworkStore(location).changes_since(seq)
    assert changed == ["1", "3"] and latest > seq
    assert store.changes_since(latest) == (latest, [])


def test_create_is_atomic_between_processes(location):
    ArtworkStore(location)
    def create(store, record, start, outcomes):
        start.wait()
        outcomes.append(store.create(record))

    for n in range(10):  # two "workers" (their own connections) creating one id at the same moment
        start, outcomes = threading.Barrier(2), []
        records = [Artwork(id=f"race-{n}", title=title) for title in "AB"]
        threads = [threading.Thread(target=create, args=(ArtworkStore(location), r, start, outcomes)) for r in records]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(o.value for o in outcomes) == ["done", "exists"]


def test_replace_compares_and_swaps_and_never_resurrects(location):
    store = ArtworkStore(location)
    original = Artwork(id="1", title="Vase")
    store.upsert_many([original])
    other = ArtworkStore(location)
    assert other.replace(Artwork(id="1", title="Urn"), expected=original) is Outcome.DONE
    assert store.replace(Artwork(id="1", title="Jar"), expected=original) is Outcome.CHANGED  # lost the race
    assert store.get("1").title == "Urn"
    other.delete("1")
    assert store.replace(Artwork(id="1", title="Jar"), expected=Artwork(id="1", title="Urn")) is Outcome.MISSING
    assert store.get("1") is None


def test_the_change_log_keeps_one_row_per_id_and_still_answers_catch_up(location):
    store = ArtworkStore(location)
    store.upsert_many([Artwork(id="1"), Artwork(id="2")])
    seq = store.last_change()
    for n in range(100):
        store.upsert_many([Artwork(id="1", title=str(n))])
    store.delete("2")
    with store.db.transaction() as db:
        assert db.execute("SELECT COUNT(*) FROM changes").fetchone()[0] == 2
    latest, changed = store.changes_since(seq)
    assert latest == store.last_change() == seq + 101 and sorted(changed) == ["1", "2"]
    assert store.changes_since(latest) == (latest, [])
    assert store.last_written == (latest, latest)
