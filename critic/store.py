"""ArtworkStore: the records' source of truth, an SQLite database in WAL mode.

Every write is one transaction committed with ``synchronous=FULL``, so a write that returned survives a crash
and a write that failed leaves the stored records exactly as they were.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from critic.records import Artwork

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS artworks (id TEXT PRIMARY KEY, record TEXT NOT NULL, text_hash TEXT NOT NULL)",
    # The latest write of each id, in commit order: other processes serving the same store catch up from it.
    # Only "which ids changed after seq" is ever asked, so an id's older rows are deleted as it is written
    # again: the table holds at most one row per id ever written.
    "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS changes_by_id ON changes (id)",
)


class Outcome(enum.Enum):
    """What a conditional write did."""

    DONE = "done"
    EXISTS = "exists"  # create: the id is taken
    MISSING = "missing"  # replace: no record of that id (deleted meanwhile)
    CHANGED = "changed"  # replace: the stored record is not the one expected


class StoreError(RuntimeError):
    """The database cannot be opened or is damaged."""


class ArtworkStore:
    """Records keyed by their catalog id.

    Example:
        >>> store = ArtworkStore(":memory:")
        >>> store.upsert_many([Artwork(id="1", title="Vase")])
        1
        >>> store.get("1").title
        'Vase'
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._local = threading.local()
        try:
            with self._connect(write=True) as db:
                for statement in _SCHEMA:
                    db.execute(statement)
                # Older databases kept every write's row: keep only each id's latest.
                db.execute("DELETE FROM changes WHERE seq NOT IN (SELECT MAX(seq) FROM changes GROUP BY id)")
                (status,) = db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"artwork database {self.path} is unreadable ({exc}); run `critic repair`") from exc
        if status != "ok":
            raise StoreError(f"artwork database {self.path} is damaged ({status}); run `critic repair`")

    def _connect(self, write: bool = False) -> _Transaction:
        # One connection per thread: sqlite3 connections must not be shared across the server's threads.
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return _Transaction(db, "BEGIN IMMEDIATE" if write else "BEGIN")

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

    def __iter__(self) -> Iterator[Artwork]:
        return iter(self.all())

    def all(self) -> list[Artwork]:
        with self._connect() as db:
            rows = db.execute("SELECT record FROM artworks ORDER BY rowid").fetchall()
        return [Artwork.from_dict(json.loads(r[0])) for r in rows]

    def ids(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT id FROM artworks ORDER BY rowid")]

    def text_hashes(self) -> dict[str, str]:
        with self._connect() as db:
            return dict(db.execute("SELECT id, text_hash FROM artworks"))

    def count(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM artworks").fetchone()[0]


def _row(record: Artwork) -> tuple[str, str, str]:
    return record.id, json.dumps(record.to_dict(), ensure_ascii=False), record.text_hash()


def _log_changes(db: sqlite3.Connection, ids: list[str]) -> tuple[int, int]:
    """Record a write of ``ids`` in the change log, dropping their older rows; the new rows' (first, last) seq.

    The writer holds the write lock, so its rows get consecutive numbers."""
    unique = list(dict.fromkeys(ids))
    db.executemany("DELETE FROM changes WHERE id = ?", [(i,) for i in unique])
    db.executemany("INSERT INTO changes (id) VALUES (?)", [(i,) for i in unique])
    last = db.execute("SELECT MAX(seq) FROM changes").fetchone()[0]
    return last - len(unique) + 1, last


class _Transaction:
    """``with`` block = one transaction: committed on success, rolled back on any error.

    Writes take the write lock up front (IMMEDIATE) so two writers never deadlock half-way.
    """

    def __init__(self, db: sqlite3.Connection, begin: str):
        self.db = db
        self.begin = begin

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute(self.begin)
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()  # a COMMIT that failed (a full disk) must not leave the transaction open
                raise
        self._rollback()

    def _rollback(self) -> None:
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolled back by itself (it may, on SQLITE_FULL or IOERR); the cause is raised anyway
