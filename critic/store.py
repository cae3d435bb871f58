"""ArtworkStore: the records' source of truth, an SQLite database in WAL mode, or PostgreSQL for several nodes.

Every write is one transaction committed with ``synchronous=FULL`` (PostgreSQL: its default synchronous
commit), so a write that returned survives a crash and a write that failed leaves the stored records exactly as
they were. Writes are serialised (critic.sql's write lock), so the change feed's numbers commit in order and a
reader that has seen change N has seen every change before it.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from critic.records import Artwork
from critic.sql import CHANGES_CHANNEL, Listener, Session, StoreError, in_chunks, open_database, redact

#: Each engine's tables. An artwork's place in store order is SQLite's rowid, PostgreSQL's ``pos``.
_SCHEMA = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS artworks (id TEXT PRIMARY KEY, record TEXT NOT NULL, text_hash TEXT NOT NULL)",
        # The latest write of each id, in commit order: other processes serving the same store catch up from it.
        # Only "which ids changed after seq" is ever asked, so an id's older rows are deleted as it is written
        # again: the table holds at most one row per id ever written.
        "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS changes_by_id ON changes (id)",
        # Older databases kept every write's row: keep only each id's latest.
        "DELETE FROM changes WHERE seq NOT IN (SELECT MAX(seq) FROM changes GROUP BY id)",
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS artworks (id TEXT PRIMARY KEY, record TEXT NOT NULL, text_hash TEXT NOT NULL, "
        "pos BIGINT GENERATED ALWAYS AS IDENTITY)",
        "CREATE TABLE IF NOT EXISTS changes (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS changes_by_id ON changes (id)",
        # Every node follows the feed: a commit that adds changes wakes their listeners (critic.follow).
        f"CREATE OR REPLACE FUNCTION critic_announce_change() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{CHANGES_CHANNEL}', ''); RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER changes_announce AFTER INSERT ON changes "
        "FOR EACH STATEMENT EXECUTE FUNCTION critic_announce_change()",
    ),
}
_ORDER = {"sqlite": "rowid", "postgresql": "pos"}
#: The write lock every write of the store takes: the change numbers it draws commit in order.
_WRITE = "artworks"


class Outcome(enum.Enum):
    """What a conditional write did."""

    DONE = "done"
    EXISTS = "exists"  # create: the id is taken
    MISSING = "missing"  # replace: no record of that id (deleted meanwhile)
    CHANGED = "changed"  # replace: the stored record is not the one expected


class ArtworkStore:
    """Records keyed by their catalog id.

    Example:
        >>> store = ArtworkStore(":memory:")
        >>> store.upsert_many([Artwork(id="1", title="Vase")])
        1
        >>> store.get("1").title
        'Vase'
    """

    def __init__(self, location: str | Path):
        """The store at ``location``: an SQLite file's path, or a ``postgresql://`` URL."""
        self.db = open_database(location)
        self.path = redact(location)
        self._local = threading.local()
        try:
            with self.db.transaction(lock=_WRITE) as db:
                for statement in _SCHEMA[self.db.dialect]:
                    db.execute(statement)
                status = db.execute("PRAGMA quick_check").fetchone()[0] if self.db.dialect == "sqlite" else "ok"
        except self.db.errors as exc:
            raise StoreError(f"artwork database {self.path} is unreadable ({exc}); {self.db.remedy}") from exc
        if status != "ok":
            raise StoreError(f"artwork database {self.path} is damaged ({status}); run `critic repair`")
        self.order = _ORDER[self.db.dialect]

    @property
    def shared(self) -> bool:
        """Whether other machines may write to this store (PostgreSQL), so a server follows its change feed."""
        return self.db.dialect == "postgresql"

    def change_listener(self) -> Listener:
        """A listener woken by every commit to the change feed (PostgreSQL only: see ``shared``)."""
        return self.db.listener(CHANGES_CHANNEL)

    def announce(self) -> None:
        """Wake every change listener now, as a commit to the feed does (PostgreSQL only)."""
        with self._connect() as db:
            db.execute(f"NOTIFY {CHANGES_CHANNEL}")

    def _connect(self, write: bool = False) -> AbstractContextManager[Session]:
        return self.db.transaction(lock=_WRITE if write else None)

    def upsert_many(self, records: Iterable[Artwork]) -> int:
        """Insert or replace records in one transaction; returns how many were written."""
        rows = [_row(r) for r in records]
        with self._connect(write=True) as db:
            db.executemany(
                "INSERT INTO artworks (id, record, text_hash) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET record = excluded.record, text_hash = excluded.text_hash",
                rows,
            )
            self.last_written = _log_changes(db, [row[0] for row in rows])
        return len(rows)

    def create(self, record: Artwork) -> Outcome:
        """Add ``record`` unless its id is taken (EXISTS, nothing written): one transaction, so of two
        concurrent creates of one id exactly one is DONE."""
        with self._connect(write=True) as db:
            if db.execute("SELECT 1 FROM artworks WHERE id = ?", (record.id,)).fetchone():
                return Outcome.EXISTS
            db.execute("INSERT INTO artworks (id, record, text_hash) VALUES (?, ?, ?)", _row(record))
            self.last_written = _log_changes(db, [record.id])
        return Outcome.DONE

    def replace(self, record: Artwork, expected: Artwork) -> Outcome:
        """Replace the stored record of ``record.id`` if it still equals ``expected`` (compare and swap, in
        one transaction): MISSING if it is gone (a delete won), CHANGED if another write got there first."""
        with self._connect(write=True) as db:
            row = db.execute("SELECT record FROM artworks WHERE id = ?", (record.id,)).fetchone()
            if row is None:
                return Outcome.MISSING
            if json.loads(row[0]) != expected.to_dict():
                return Outcome.CHANGED
            db.execute("UPDATE artworks SET record = ?, text_hash = ? WHERE id = ?", _row(record)[1:] + (record.id,))
            self.last_written = _log_changes(db, [record.id])
        return Outcome.DONE

    def get(self, artwork_id: str) -> Artwork | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM artworks WHERE id = ?", (artwork_id,)).fetchone()
        return Artwork.from_dict(json.loads(row[0])) if row else None

    def get_many(self, ids: Sequence[str]) -> list[Artwork]:
        """The stored records among ``ids``, in their order (missing ones left out), a few queries in all."""
        found: dict[str, Artwork] = {}
        with self._connect() as db:
            for chunk, marks in in_chunks(ids):
                for (text,) in db.execute(f"SELECT record FROM artworks WHERE id IN ({marks})", chunk).fetchall():
                    record = Artwork.from_dict(json.loads(text))
                    found[record.id] = record
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    def delete(self, artwork_id: str) -> bool:
        with self._connect(write=True) as db:
            deleted = db.execute("DELETE FROM artworks WHERE id = ?", (artwork_id,)).rowcount > 0
            if deleted:
                self.last_written = _log_changes(db, [artwork_id])
            return deleted

    @property
    def last_written(self) -> tuple[int, int]:
        """The change numbers (first, last) of this thread's latest write; (0, 0) before any."""
        return getattr(self._local, "written", (0, 0))

    @last_written.setter
    def last_written(self, span: tuple[int, int]) -> None:
        self._local.written = span

    def changes_since(self, seq: int) -> tuple[int, list[str]]:
        """Ids written or deleted after change number ``seq``, and the latest change number."""
        with self._connect() as db:
            rows = db.execute("SELECT seq, id FROM changes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        latest = rows[-1][0] if rows else seq
        return latest, list(dict.fromkeys(i for _, i in rows))

    def last_change(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]

    def check_records(self) -> tuple[dict[str, str], list[str]]:
        """Remove the rows whose record no longer parses and restamp stale text hashes, as one logged write
        (followers drop or re-index them); returns (removed: id -> stored text, restamped ids)."""
        unusable: dict[str, str] = {}
        stale: list[tuple[str, str]] = []
        with self._connect(write=True) as db:
            for artwork_id, text, stored_hash in db.execute("SELECT id, record, text_hash FROM artworks").fetchall():
                try:
                    record = Artwork.from_dict(json.loads(text))
                except (TypeError, ValueError, KeyError):
                    unusable[artwork_id] = text
                    continue
                if record.text_hash() != stored_hash:
                    stale.append((record.text_hash(), artwork_id))
            db.executemany("DELETE FROM artworks WHERE id = ?", [(i,) for i in unusable])
            db.executemany("UPDATE artworks SET text_hash = ? WHERE id = ?", stale)
            if unusable or stale:
                self.last_written = _log_changes(db, [*unusable, *(i for _, i in stale)])
        return unusable, [i for _, i in stale]

    def __iter__(self) -> Iterator[Artwork]:
        return iter(self.all())

    def all(self) -> list[Artwork]:
        with self._connect() as db:
            rows = db.execute(f"SELECT record FROM artworks ORDER BY {self.order}").fetchall()
        return [Artwork.from_dict(json.loads(r[0])) for r in rows]

    def ids(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute(f"SELECT id FROM artworks ORDER BY {self.order}")]

    def text_hashes(self) -> dict[str, str]:
        with self._connect() as db:
            return dict(db.execute("SELECT id, text_hash FROM artworks"))

    def count(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM artworks").fetchone()[0]


def _row(record: Artwork) -> tuple[str, str, str]:
    return record.id, json.dumps(record.to_dict(), ensure_ascii=False), record.text_hash()


def _log_changes(db: Session, ids: list[str]) -> tuple[int, int]:
    """Record a write of ``ids`` in the change log, dropping their older rows; the new rows' (first, last) seq.

    The writer holds the write lock, so its rows get consecutive numbers."""
    unique = list(dict.fromkeys(ids))
    db.executemany("DELETE FROM changes WHERE id = ?", [(i,) for i in unique])
    db.executemany("INSERT INTO changes (id) VALUES (?)", [(i,) for i in unique])
    last = db.execute("SELECT MAX(seq) FROM changes").fetchone()[0]
    return last - len(unique) + 1, last
