"""ArtworkStore: the records' source of truth, an SQLite database in WAL mode.

Every write is one transaction committed with ``synchronous=FULL``, so a write that returned survives a crash
and a write that failed leaves the stored records exactly as they were.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from critic.records import Artwork

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS artworks (id TEXT PRIMARY KEY, record TEXT NOT NULL, text_hash TEXT NOT NULL)",
    # One row per write, in commit order: other processes serving the same store catch up from it.
    "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL)",
)


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
        rows = [(r.id, json.dumps(r.to_dict(), ensure_ascii=False), r.text_hash()) for r in records]
        with self._connect(write=True) as db:
            db.executemany(
                "INSERT INTO artworks (id, record, text_hash) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET record = excluded.record, text_hash = excluded.text_hash",
                rows,
            )
            db.executemany("INSERT INTO changes (id) VALUES (?)", [(row[0],) for row in rows])
        return len(rows)

    def get(self, artwork_id: str) -> Artwork | None:
        with self._connect() as db:
            row = db.execute("SELECT record FROM artworks WHERE id = ?", (artwork_id,)).fetchone()
        return Artwork.from_dict(json.loads(row[0])) if row else None

    def delete(self, artwork_id: str) -> bool:
        with self._connect(write=True) as db:
            deleted = db.execute("DELETE FROM artworks WHERE id = ?", (artwork_id,)).rowcount > 0
            if deleted:
                db.execute("INSERT INTO changes (id) VALUES (?)", (artwork_id,))
            return deleted

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
