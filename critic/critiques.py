"""Pre-generated critiques: one row per (artwork id, tone, seed), stamped with what the critique was written from.

`critic critique --all` (critic.pregenerate) fills the table; the writing service (critic.writing) serves a row
only while its stamp is current: the artwork's record is the same version, the writer is the same, and every
neighbour the writer drew on (comparisons, quoted observations, draft sentences) is unchanged and still there.
A critique is rewritten in place, so the table holds at most one row per artwork, tone and seed ever asked for.

Where it lives: with ``CRITIC_DATABASE_URL``, in PostgreSQL beside the artworks (one pre-generation serves every
node, over the store's own connections); otherwise in the home's ``critiques.sqlite``, not ``artworks.sqlite``:
the rows are derived and much larger than the records, so they stay out of the source of truth's file (its
integrity check at every start, its backups, its write lock) and can be deleted at any time.

Example:
    >>> critiques = CritiqueStore(open_database(":memory:"))
    >>> stamp = Stamp(record="v1", writer="w1", cited={"9": "n1"})
    >>> critiques.put_many([Pregenerated("7", "label", 0, stamp, {"id": "7", "text": "A vase."})])
    >>> found = critiques.get("7", "label", 0)
    >>> found.critique["text"], found.stamp.current("v1", "w1", {"9": "n1"}.get)
    ('A vase.', True)
    >>> found.stamp.current("v2", "w1", {"9": "n1"}.get), found.stamp.current("v1", "w1", {}.get)  # changed; deleted
    (False, False)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from critic.home import Home
from critic.sql import Database, StoreError, open_database, redact
from critic.store import ArtworkStore

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS critiques (id TEXT NOT NULL, tone TEXT NOT NULL, seed BIGINT NOT NULL, "
    "record_version TEXT NOT NULL, writer TEXT NOT NULL, cited TEXT NOT NULL, critique TEXT NOT NULL, "
    "PRIMARY KEY (id, tone, seed))"
)
_WRITE = "critiques"


@dataclass(frozen=True)
class Stamp:
    """What a critique was written from: its record's version (``Artwork.version``), the writer's version
    (``Writing.writer_version``) and the version of each neighbour it drew on, by id."""

    record: str
    writer: str
    cited: dict[str, str]

    def current(self, record: str, writer: str, version_of: Callable[[str], str | None]) -> bool:
        """Whether a critique with this stamp is still the one to serve for a record at version ``record`` by the
        writer ``writer``; ``version_of`` gives a cited artwork's version now (None once it is deleted)."""
        return (
            self.record == record
            and self.writer == writer
            and all(version_of(i) == version for i, version in self.cited.items())
        )


@dataclass(frozen=True)
class Pregenerated:
    """A finished critique (its JSON, as the API returns it) with its key and stamp."""

    id: str
    tone: str
    seed: int
    stamp: Stamp
    critique: dict


class CritiqueStore:
    """The ``critiques`` table of a database (see the module's docstring for which one)."""

    def __init__(self, db: Database):
        self.db = db
        try:
            with db.transaction(lock=_WRITE) as session:
                session.execute(_SCHEMA)
        except db.errors as exc:
            raise StoreError(
                f"critique database {redact(db.location)} is unusable ({exc}); it holds only pre-generated "
                f"critiques: delete it (SQLite) or drop its critiques table, and `critic critique --all` again"
            ) from exc

    def get(self, artwork_id: str, tone: str, seed: int) -> Pregenerated | None:
        with self.db.transaction() as session:
            row = session.execute(
                "SELECT record_version, writer, cited, critique FROM critiques WHERE id = ? AND tone = ? AND seed = ?",
                (artwork_id, tone, seed),
            ).fetchone()
        if row is None:
            return None
        return Pregenerated(artwork_id, tone, seed, Stamp(row[0], row[1], json.loads(row[2])), json.loads(row[3]))

    def stamps(self, seed: int) -> dict[tuple[str, str], Stamp]:
        """The stamp of every critique kept for ``seed``, by (artwork id, tone)."""
        with self.db.transaction() as session:
            rows = session.execute(
                "SELECT id, tone, record_version, writer, cited FROM critiques WHERE seed = ?", (seed,)
            ).fetchall()
        return {(i, tone): Stamp(record, writer, json.loads(cited)) for i, tone, record, writer, cited in rows}

    def put_many(self, critiques: Iterable[Pregenerated]) -> None:
        """Insert critiques, replacing the row of the same artwork, tone and seed, in one transaction."""
        rows = [
            (c.id, c.tone, c.seed, c.stamp.record, c.stamp.writer, json.dumps(c.stamp.cited, sort_keys=True),
             json.dumps(c.critique, ensure_ascii=False))
            for c in critiques
        ]
        with self.db.transaction(lock=_WRITE) as session:
            session.executemany(
                "INSERT INTO critiques (id, tone, seed, record_version, writer, cited, critique) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id, tone, seed) DO UPDATE SET "
                "record_version = excluded.record_version, writer = excluded.writer, cited = excluded.cited, "
                "critique = excluded.critique",
                rows,
            )

    def keep_only(self, artwork_ids: set[str]) -> int:
        """Delete the critiques of artworks not in ``artwork_ids`` (deleted from the collection); how many."""
        with self.db.transaction(lock=_WRITE) as session:
            gone = [(i,) for (i,) in session.execute("SELECT DISTINCT id FROM critiques") if i not in artwork_ids]
            session.executemany("DELETE FROM critiques WHERE id = ?", gone)
            return len(gone)

    def count(self) -> int:
        with self.db.transaction() as session:
            return session.execute("SELECT COUNT(*) FROM critiques").fetchone()[0]


def open_critiques(home: Home, store: ArtworkStore) -> CritiqueStore:
    """The pre-generated critiques of ``home``: in the store's PostgreSQL database when it is shared, else in
    ``critiques.sqlite``."""
    return CritiqueStore(store.db if store.shared else open_database(home.critiques_path))
