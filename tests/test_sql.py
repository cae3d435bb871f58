"""critic/sql.py: one SQL text for SQLite and PostgreSQL, and what the rest of the project sees of each engine."""

from __future__ import annotations

import threading

import pytest

from critic.keys import KeyStore
from critic.repair import check_database
from critic.sql import PostgresDatabase, SqliteDatabase, StoreError, advisory_key, is_url, open_database, redact
from critic.store import ArtworkStore

UNREACHABLE = "postgresql://critic:s3cret@127.0.0.1:1/critic"  # nothing listens on port 1


def test_a_url_opens_postgresql_and_anything_else_an_sqlite_file(tmp_path):
    assert isinstance(open_database(UNREACHABLE), PostgresDatabase)  # connects lazily: nothing is opened yet
    assert isinstance(open_database(tmp_path / "a.sqlite"), SqliteDatabase)
    assert is_url("postgres://db/x") and not is_url("postgresql.sqlite") and not is_url(tmp_path)
    assert redact(UNREACHABLE) == "postgresql://critic:***@127.0.0.1:1/critic"
    assert len({advisory_key(name) for name in ("artworks", "api_keys", "buckets")}) == 3


def test_a_block_that_fails_leaves_nothing_and_writers_exclude_each_other(tmp_path):
    db = open_database(tmp_path / "a.sqlite")
    with db.transaction(lock="t") as tx:
        tx.execute("CREATE TABLE t (n INTEGER)")
    with pytest.raises(ZeroDivisionError), db.transaction(lock="t") as tx:
        tx.execute("INSERT INTO t VALUES (?)", (1,))
        raise ZeroDivisionError
    with db.transaction() as tx:
        assert tx.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0

    def add() -> None:  # read-modify-write under the write lock, from threads with their own connections
        for _ in range(20):
            with db.transaction(lock="t") as tx:
                (count,) = tx.execute("SELECT COUNT(*) FROM t").fetchone()
                tx.execute("INSERT INTO t VALUES (?)", (count,))

    threads = [threading.Thread(target=add) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.transaction() as tx:
        assert sorted(n for (n,) in tx.execute("SELECT n FROM t")) == list(range(60))


def test_an_unreachable_database_is_one_clear_error_without_the_password():
    # StoreError is what `critic` turns into its one-line exit 2 (critic/cli.py's _known_errors).
    for opening in (check_database, ArtworkStore, KeyStore):
        with pytest.raises(StoreError) as raised:
            opening(UNREACHABLE)
        message = str(raised.value)
        assert "postgresql://critic:***@127.0.0.1:1/critic" in message and "s3cret" not in message
        assert "CRITIC_DATABASE_URL" in message
