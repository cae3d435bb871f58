import shutil

import pytest

from critic.home import Home
from critic.records import Artwork
from critic.service import Service
from critic.store import Outcome


@pytest.fixture()
def home(built_home, tmp_path):
    """A private copy of the session build, free to write to."""
    return Home(shutil.copytree(built_home.root, tmp_path / "home"))


NEW = Artwork(
    id="new-1",
    title="Lighthouse in a Storm",
    creators=["Test Painter"],
    classification="Painting & Drawing",
    description="A stormy seascape: waves break against the rocks below a lighthouse whose beam cuts the rain.",
)


def test_added_artwork_is_searchable_at_once_and_durable(home):
    service = Service.load(home, log=lambda _: None)
    service.upsert([NEW])
    hits = service.recommender.similar_to_text(NEW.text(), k=3).to_json()["results"]
    assert hits[0]["id"] == "new-1" and hits[0]["score"] > 0.999
    # a fresh process sees it too: the store is the truth and the index is reconciled at load
    again = Service.load(home, log=lambda _: None)
    assert again.store.get("new-1").title == NEW.title
    assert "new-1" in again.recommender.index


def test_delete_removes_from_search(home):
    service = Service.load(home, log=lambda _: None)
    service.upsert([NEW])
    assert service.delete("new-1") is True
    hits = service.recommender.similar_to_text(NEW.text(), k=20).to_json()["results"]
    assert "new-1" not in {h["id"] for h in hits}
    assert service.delete("new-1") is False


def test_another_process_catches_up_through_refresh(home):
    reader = Service.load(home, log=lambda _: None)
    writer = Service.load(home, log=lambda _: None)
    writer.upsert([NEW])
    assert "new-1" not in reader.recommender.index
    assert reader.refresh() == 1
    assert "new-1" in reader.recommender.index
    writer.delete("new-1")
    reader.refresh()
    assert "new-1" not in reader.recommender.index


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_missing_or_corrupt_index_is_rebuilt_from_the_store(home, damage):
    messages = []
    target = next(home.index_dir.glob("index-*.faiss"))
    if damage == "delete":
        shutil.rmtree(home.index_dir)
    else:
        target.write_bytes(target.read_bytes()[:100])
    service = Service.load(home, log=messages.append)
    assert len(service.recommender.index) == service.store.count()
    assert any("rebuilding it from the store" in m for m in messages) or damage == "delete"
    assert any("reconciled" in m for m in messages)
    first = service.store.ids()[0]
    assert service.recommender.similar(first, k=5).results


def test_a_committed_write_whose_index_update_fails_is_kept_and_applied_later(home, monkeypatch):
    service = Service.load(home, log=lambda _: None)
    upsert = service.recommender.upsert
    monkeypatch.setattr(service.recommender, "upsert", lambda *a, **k: (_ for _ in ()).throw(MemoryError("faiss")))
    assert service.create(NEW) is Outcome.DONE  # acknowledged: it is committed
    assert service.store.get("new-1") is not None and "new-1" not in service.recommender.index
    assert service.refresh() == 0  # still failing: the cursor stays before the change
    monkeypatch.setattr(service.recommender, "upsert", upsert)
    assert service.refresh() == 1 and "new-1" in service.recommender.index
    assert service.create(NEW) is Outcome.EXISTS  # a retry is a conflict only because the first one counted


def test_a_writer_advances_its_own_cursor_and_readers_theirs_only_after_applying(home, monkeypatch):
    writer = Service.load(home, log=lambda _: None)
    reader = Service.load(home, log=lambda _: None)
    writer.upsert([NEW])
    assert writer.refresh() == 0  # its own write is applied already
    upsert = reader.recommender.upsert
    monkeypatch.setattr(reader.recommender, "upsert", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    assert reader.refresh() == 0 and "new-1" not in reader.recommender.index
    monkeypatch.setattr(reader.recommender, "upsert", upsert)
    assert reader.refresh() == 1 and "new-1" in reader.recommender.index
    changed = Artwork.from_dict({**NEW.to_dict(), "title": "Lighthouse at Night"})
    assert reader.replace(changed, expected=NEW) is Outcome.DONE
    assert writer.replace(Artwork.from_dict({**NEW.to_dict(), "title": "Lost"}), expected=NEW) is Outcome.CHANGED
    writer.refresh()
    assert writer.recommender.similar("new-1", k=1).results  # the writer follows the reader's change
