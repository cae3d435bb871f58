"""One SQL database behind the few calls the stores make: an SQLite file (the default) or PostgreSQL (a URL).

ArtworkStore, KeyStore and RateLimiter write their SQL once, with ``?`` placeholders and statements both engines
accept (``INSERT ... ON CONFLICT``), and run it in ``with db.transaction(...)`` blocks. This module opens the
connections (one per thread, as neither engine lets threads share one mid-transaction, and one per process:
the API's workers fork from a master that loaded the build, and a connection must not cross a fork) and gives
each engine's meaning to a transaction's two options:

* ``lock="name"``: a write that excludes every other write under that name until it commits, so numbers it
  draws (the change feed's) commit in order. SQLite: the file's write lock (``BEGIN IMMEDIATE``); PostgreSQL: a
  transaction-scoped advisory lock on the name, taken first.
* ``durable=False``: a commit that may be lost in a crash (rate-limit counters). SQLite sets it per connection
  (``synchronous``); PostgreSQL per transaction (``synchronous_commit = off``).

Example:
    >>> db = open_database(":memory:")
    >>> with db.transaction(lock="t") as tx:
    ...     _ = tx.execute("CREATE TABLE t (a TEXT)")
    ...     _ = tx.execute("INSERT INTO t VALUES (?)", ("x",))
    >>> with db.transaction() as tx:
    ...     tx.execute("SELECT a FROM t").fetchall()
    [('x',)]
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

POSTGRESQL_SCHEMES = ("postgresql", "postgres")
#: The channel PostgreSQL announces each committed write of the change feed on (critic.store's schema).
CHANGES_CHANNEL = "critic_changes"


class StoreError(RuntimeError):
    """A database cannot be opened, reached or used, or is damaged."""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Session(Protocol):
    """What a transaction block gets: ``execute`` and ``executemany`` with ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...


#: Values bound in one ``IN (...)``: SQLite caps the number of bound parameters.
IN_CHUNK = 500


def in_chunks(values: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """``values`` without repeats, in chunks of at most IN_CHUNK, each with its ``?`` marks for ``IN (...)``.

    Example:
        >>> list(in_chunks(["a", "b", "a"]))
        [(['a', 'b'], '?,?')]
    """
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), IN_CHUNK):
        chunk = unique[start : start + IN_CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def is_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than an SQLite file.

    Example:
        >>> is_url("postgresql://critic@db.example.org/critic"), is_url("/data/artworks.sqlite")
        (True, False)
    """
    return isinstance(location, str) and urlsplit(location).scheme in POSTGRESQL_SCHEMES


def redact(location: str | Path) -> str:
    """``location`` fit for a message: a URL's password replaced by ``***``.

    Example:
        >>> redact("postgresql://critic:s3cret@db:5432/art")
        'postgresql://critic:***@db:5432/art'
    """
    if not is_url(location):
        return str(location)
    parts = urlsplit(str(location))
    if parts.password is None:
        return str(location)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Database(Protocol):
    """An open database: ``dialect`` is ``"sqlite"`` or ``"postgresql"``, ``errors`` what its driver raises."""

    dialect: str
    errors: tuple[type[BaseException], ...]
    location: str
    remedy: str  # what to do when it cannot be opened, for the error message

    def transaction(self, lock: str | None = None, durable: bool = True) -> AbstractContextManager[Session]: ...


class SqliteDatabase:
    """An SQLite file in WAL mode (``:memory:`` for a private in-memory one)."""

    dialect = "sqlite"
    errors = (sqlite3.Error,)
    remedy = "run `critic repair`"

    def __init__(self, path: str | Path, timeout: float = 30.0, durable: bool = True):
        self.location = str(path)
        self.timeout = timeout
        self.synchronous = "FULL" if durable else "OFF"
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            db = sqlite3.connect(self.location, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            if self.location != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextmanager
    def transaction(self, lock: str | None = None, durable: bool = True) -> Iterator[sqlite3.Connection]:
        # Writes take the file's write lock up front (IMMEDIATE), so two writers never deadlock half-way.
        db = self._connection()
        db.execute("BEGIN IMMEDIATE" if lock else "BEGIN")
        try:
            yield db
        except BaseException:
            _rollback(db)
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error:
            _rollback(db)  # a COMMIT that failed (a full disk) must not leave the transaction open
            raise


def _rollback(db: sqlite3.Connection) -> None:
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # SQLite rolled back by itself (it may, on SQLITE_FULL or IOERR); the cause is raised anyway


class PostgresDatabase:
    """A PostgreSQL database by URL (``postgresql://user:password@host:5432/name``), through psycopg 3.

    A thread's connection is opened on first use and again after it broke (a restarted server).
    """

    dialect = "postgresql"
    remedy = "check that the server is up and CRITIC_DATABASE_URL names it"

    def __init__(self, url: str, connect_timeout: int = 10):
        try:
            import psycopg  # only a PostgreSQL setup needs the driver
        except ModuleNotFoundError as exc:
            raise StoreError(f"{redact(url)} needs psycopg: pip install 'art-critic[postgresql]'") from exc

        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        self.location = url
        self.connect_timeout = connect_timeout
        self._local = threading.local()

    def connect(self) -> Any:
        """A new connection of its own in autocommit mode (``transaction`` blocks make the transactions)."""
        return self._psycopg.connect(self.location, autocommit=True, connect_timeout=self.connect_timeout)

    def _connection(self) -> Any:
        db = getattr(self._local, "db", None)
        if db is None or db.closed or self._local.pid != os.getpid():
            db = self._local.db = self.connect()
            self._local.pid = os.getpid()
        return db

    @contextmanager
    def transaction(self, lock: str | None = None, durable: bool = True) -> Iterator[_PostgresSession]:
        db = self._connection()
        with db.transaction():
            session = _PostgresSession(db)
            if lock:
                session.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(lock),))
            if not durable:
                session.execute("SET LOCAL synchronous_commit = off")
            yield session

    def listener(self, channel: str) -> Listener:
        """A connection of its own that waits for NOTIFY on ``channel``."""
        return Listener(self, channel)


class Listener:
    """LISTEN on a channel of a PostgreSQL database, over a connection of its own opened on first use.

    A connection that fails is closed and the error raised; the next ``wait`` opens a new one.
    """

    def __init__(self, database: PostgresDatabase, channel: str):
        self.database, self.channel = database, channel
        self._db: Any = None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a notice; True if one came."""
        try:
            if self._db is None or self._db.closed:
                self._db = self.database.connect()
                self._db.execute(f"LISTEN {self.channel}")
            return any(True for _ in self._db.notifies(timeout=timeout, stop_after=1))
        except self.database.errors:
            self.close()
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def advisory_key(name: str) -> int:
    """A stable signed 64-bit number for the advisory lock called ``name``.

    Example:
        >>> advisory_key("artworks") == advisory_key("artworks") != advisory_key("api_keys")
        True
    """
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class _PostgresSession:
    """psycopg's connection with ``?`` placeholders (the SQL here has no literal ``?`` or ``%``)."""

    def __init__(self, db: Any):
        self.db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.db.execute(sql.replace("?", "%s"), params or None)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        cursor = self.db.cursor()
        cursor.executemany(sql.replace("?", "%s"), list(rows))
        return cursor


def open_database(location: str | Path, timeout: float = 30.0, durable: bool = True) -> Database:
    """The database at ``location``: PostgreSQL for a ``postgresql://`` URL, else the SQLite file at that path
    (``timeout`` and ``durable`` are SQLite's connection settings; PostgreSQL takes them per transaction)."""
    if is_url(location):
        return PostgresDatabase(str(location))
    return SqliteDatabase(location, timeout=timeout, durable=durable)
