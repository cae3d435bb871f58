"""`critic repair`: bring a damaged home back into service, keeping a copy of whatever was damaged.

What can break, and what starting does about it:

* The vector index (``index/``) is derived data. Loading a build checks it whole (manifest, sizes, sha256) and
  rebuilds it from the database by itself when it is missing, truncated or corrupt (critic.service), logging
  why. ``critic repair`` rebuilds it unconditionally.
* The artwork database (``artworks.sqlite``) is the source of truth. Opening it runs SQLite's quick_check; a
  damaged one stops the service with "... is damaged ...; run `critic repair`". Repair copies the damaged
  files byte for byte into ``<home>/damaged-<UTC time>/``, then salvages every row it can still read (table by
  table, in rowid ranges, narrowing around unreadable pages down to single rows) into a new database that
  replaces it, and reports how many rows were recovered and lost. Records that no longer parse are dropped
  and counted. The same applies to the keys database; a damaged embedding cache is moved aside whole (it is
  a cache: the index rebuild re-embeds what it needs).
* With ``CRITIC_DATABASE_URL`` the artworks and keys live in PostgreSQL, whose pages are its own to keep (WAL,
  ``amcheck``, backups). Repair then checks the database record by record: rows whose record no longer parses
  are removed into the backup folder and stale text hashes restamped, both through the change feed so every
  node drops or re-indexes them; the node's own files (embedding cache, index) are repaired as above.

Run it with the server stopped: it replaces files the server holds open.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from critic.home import Home, database_url
from critic.records import Artwork
from critic.sql import PostgresDatabase, is_url, redact
from critic.store import ArtworkStore, StoreError

CHUNK = 512


class RepairError(StoreError):
    """The home cannot be repaired (nothing built there, or nothing of the database could be read)."""


def database_status(path: str | Path) -> str:
    """``"ok"``, ``"missing"``, or what SQLite says is wrong with the database at ``path``."""
    path = Path(path)
    if not path.exists():
        return "missing"
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return "ok" if rows == ["ok"] else "; ".join(rows)[:300]


def check_database(path: str | Path) -> None:
    """Raise StoreError naming the recovery when the database at ``path`` exists and is damaged, or when the
    PostgreSQL database it names cannot be reached."""
    if is_url(path):
        database = PostgresDatabase(str(path))
        try:
            database.connect().close()
        except database.errors as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"artwork database {redact(path)} is unreachable ({reason}); {database.remedy}") from exc
        return
    status = database_status(path)
    if status not in ("ok", "missing"):
        raise StoreError(f"artwork database {path} is damaged ({status.splitlines()[0]}); run `critic repair`")


@dataclass
class Salvage:
    """What was read back from a damaged database."""

    tables: dict[str, int] = field(default_factory=dict)  # rows recovered per table
    unreadable: int = 0  # rowid ranges or rows SQLite refused to read
    dropped: int = 0  # rows read but unusable (a record that does not parse)
    schema_lost: bool = False  # the table list itself was unreadable
    from_pages: int = 0  # artworks found only by reading the raw pages


def _sidecars(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")) if p.exists()]


def _rows(db: sqlite3.Connection, table: str, columns: str, salvage: Salvage) -> list[tuple]:
    """Every row of ``table`` that can be read, with its rowid first, however damaged the b-tree is."""
    quoted = '"' + table.replace('"', '""') + '"'
    try:
        return db.execute(f"SELECT rowid, {columns} FROM {quoted} ORDER BY rowid").fetchall()
    except sqlite3.DatabaseError:
        pass
    try:
        top: int | None = db.execute(f"SELECT max(rowid) FROM {quoted}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = None  # unknown: probe onwards until 64 chunks in a row hold nothing
    found: list[tuple] = []

    def read(lo: int, hi: int) -> None:
        try:
            found.extend(db.execute(f"SELECT rowid, {columns} FROM {quoted} WHERE rowid BETWEEN ? AND ?", (lo, hi)))
        except sqlite3.DatabaseError:
            if lo == hi:
                salvage.unreadable += 1
                return
            mid = (lo + hi) // 2
            read(lo, mid)
            read(mid + 1, hi)

    lo, empty_run = 1, 0
    while (lo <= top) if top is not None else (empty_run < 64):
        before = len(found)
        read(lo, lo + CHUNK - 1)
        empty_run = 0 if len(found) > before else empty_run + 1
        lo += CHUNK
    return found


def salvage_database(damaged: Path, target: Path, artworks: bool = True) -> Salvage:
    """Copy what can be read of the SQLite database ``damaged`` into a new database ``target``.

    ``damaged`` must be a scratch copy: a truncated file is padded with empty pages back to the size its
    header records, so that SQLite reads the pages that are left. For the artwork database (``artworks``),
    records the SQL reading missed are looked for in the raw pages too (scan_artwork_pages), and when not
    even the table list can be read, the raw pages are all there is.
    """
    _pad_truncated(damaged)
    salvage = Salvage()
    source = sqlite3.connect(damaged, timeout=30)
    out = sqlite3.connect(target, isolation_level=None)
    try:
        out.execute("PRAGMA journal_mode=WAL")
        out.execute("BEGIN")
        try:
            schema = source.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type = 'index'"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            if not artworks:
                raise RepairError(f"{damaged.name}: not even its table list can be read ({exc})") from exc
            salvage.schema_lost = True
            schema = [("table", name, sql) for name, sql in _STORE_TABLES]
        for kind, name, sql in schema:
            if name.startswith("sqlite_"):
                continue
            out.execute(sql)
            if kind != "table" or salvage.schema_lost:
                continue
            columns = [r[1] for r in source.execute(f'PRAGMA table_info("{name}")')]
            column_list = ", ".join(f'"{c}"' for c in columns)
            rows = _rows(source, name, column_list, salvage)
            if artworks and name == "artworks":
                rows = _usable_artworks(rows, columns, salvage)
            marks = ", ".join("?" * (len(columns) + 1))
            out.executemany(f'INSERT OR IGNORE INTO "{name}" (rowid, {column_list}) VALUES ({marks})', rows)
        if artworks and (salvage.unreadable or salvage.schema_lost):
            known = {r[0] for r in out.execute("SELECT id FROM artworks")}
            extra = {
                i: r for i, r in scan_artwork_pages(damaged.read_bytes(), _page_size(damaged)).items() if i not in known
            }
            rows = _usable_artworks(
                [(None, i, r, "") for i, r in extra.items()], ["id", "record", "text_hash"], salvage
            )
            out.executemany("INSERT INTO artworks (id, record, text_hash) VALUES (?, ?, ?)", [r[1:] for r in rows])
            out.executemany("INSERT INTO changes (id) VALUES (?)", [(r[1],) for r in rows])
            salvage.from_pages = len(rows)
        for kind, name, _ in schema:
            if kind == "table" and not name.startswith("sqlite_"):
                salvage.tables[name] = out.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        out.execute("COMMIT")
        (status,) = out.execute("PRAGMA integrity_check").fetchone()
        if status != "ok":
            raise RepairError(f"the recovered copy of {damaged.name} fails its own integrity check: {status}")
    finally:
        out.close()
        source.close()
    return salvage


_STORE_TABLES = [
    ("artworks", "CREATE TABLE artworks (id TEXT PRIMARY KEY, record TEXT NOT NULL, text_hash TEXT NOT NULL)"),
    ("changes", "CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL)"),
]


def _page_size(path: Path) -> int:
    with open(path, "rb") as handle:
        header = handle.read(100)
    size = int.from_bytes(header[16:18], "big") if header.startswith(b"SQLite format 3\0") else 0
    size = 65536 if size == 1 else size
    return size if size >= 512 and size & (size - 1) == 0 else 4096


def _usable_artworks(rows: list[tuple], columns: list[str], salvage: Salvage) -> list[tuple]:
    """Rows whose record parses as an Artwork; the text hash is recomputed from the record."""
    at = {name: n + 1 for n, name in enumerate(columns)}
    kept = []
    for row in rows:
        try:
            record = Artwork.from_dict(json.loads(row[at["record"]]))
        except (TypeError, ValueError, KeyError):
            salvage.dropped += 1
            continue
        fixed = list(row)
        fixed[at["text_hash"]] = record.text_hash()
        kept.append(tuple(fixed))
    return kept


def _recover(path: Path, backup: Path, log: Callable[[str], None], what: str) -> Salvage:
    """Back up the damaged ``path`` (and its WAL) into ``backup``, salvage it and put the result in its place."""
    backup.mkdir(parents=True, exist_ok=True)
    for part in _sidecars(path):
        shutil.copy2(part, backup / part.name)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".repair-") as scratch:
        # Salvage from a scratch copy: SQLite may write to a database it opens (the WAL), the backup stays as found.
        work = Path(scratch) / path.name
        for part in _sidecars(path):
            shutil.copy2(part, Path(scratch) / part.name)
        recovered = Path(scratch) / f"recovered-{path.name}"
        salvage = salvage_database(work, recovered, artworks=what == "database")
        for part in _sidecars(path):
            part.unlink()
        shutil.move(recovered, path)
        for suffix in ("-wal", "-shm"):
            leftover = Path(f"{recovered}{suffix}")
            if leftover.exists():
                shutil.move(leftover, Path(f"{path}{suffix}"))
    counts = ", ".join(f"{n:,} {table} rows" for table, n in salvage.tables.items())
    log(
        f"{what}: recovered {counts} into a new {path.name}; {salvage.unreadable} unreadable range(s) or row(s), "
        f"{salvage.dropped} unusable record(s) dropped; the damaged files are in {backup}"
    )
    if salvage.from_pages:
        how = "its table list was unreadable" if salvage.schema_lost else "SQLite could not reach them"
        log(
            f"{what}: {salvage.from_pages:,} of those artworks came from reading the raw pages ({how}); such a scan "
            "can bring back a record that had been deleted or an older version of one: check them"
        )
    return salvage


def _repair_sqlite(home: Home, backup: Path, report: dict, log: Callable[[str], None]) -> None:
    """Salvage the home's damaged SQLite databases (artworks, keys) into new ones, keeping copies in ``backup``."""
    status = database_status(home.store_path)
    report["database"] = status
    if status == "ok":
        log(f"database: {home.store_path.name} passes SQLite's quick_check")
    else:
        log(f"database: {home.store_path.name} is damaged ({status.splitlines()[0]})")
        salvage = _recover(home.store_path, backup, log, "database")
        report["backup"] = str(backup)
        report["recovered_artworks"] = salvage.tables.get("artworks", 0)
        report["unreadable"] = salvage.unreadable
        report["dropped"] = salvage.dropped
        if not report["recovered_artworks"]:
            log("database: no artwork could be read back; `critic build` re-imports the catalog")

    keys = home.keys_path
    keys_status = database_status(keys)
    if keys_status not in ("ok", "missing"):
        log(f"keys: {keys.name} is damaged ({keys_status.splitlines()[0]})")
        report["backup"] = str(backup)
        try:
            _recover(keys, backup, log, "keys")
        except RepairError as exc:
            for part in _sidecars(keys):
                part.unlink()
            log(f"keys: {exc}; no key could be kept (a copy is in {backup}): create them again, `critic keys create`")


def _check_postgresql(url: str, backup: Path, report: dict, log: Callable[[str], None]) -> None:
    """Check the shared PostgreSQL database record by record (its pages are PostgreSQL's own to keep: WAL,
    ``amcheck``, backups): rows whose record no longer parses are removed into ``backup``, stale text hashes
    restamped, both as logged writes, so every node following the feed drops or re-indexes them."""
    check_database(url)
    store = ArtworkStore(url)
    unusable, restamped = store.check_records()
    report["database"] = "ok" if not (unusable or restamped) else "repaired"
    report["dropped"] = len(unusable)
    report["restamped"] = len(restamped)
    if unusable:
        backup.mkdir(parents=True, exist_ok=True)
        kept = backup / "artworks-unusable.jsonl"
        kept.write_text("".join(json.dumps({"id": i, "record": text}) + "\n" for i, text in unusable.items()))
        report["backup"] = str(backup)
    where = f"; their rows are in {backup / 'artworks-unusable.jsonl'}" if unusable else ""
    log(
        f"database: PostgreSQL {redact(url)}: {store.count():,} artworks; {len(unusable)} unusable record(s) "
        f"removed, {len(restamped)} stale text hash(es) restamped{where}"
    )


def repair(home: Home, log: Callable[[str], None] = print) -> dict:
    """Check and repair every file of ``home`` and the database it serves; returns what was found and done (also
    logged line by line)."""
    url = database_url()
    if not home.store_path.exists() and not (url and home.vae_dir.exists()):
        raise RepairError(f"nothing built in {home.root}: run `critic build` (there is nothing to repair)")
    backup = home.root / f"damaged-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    report: dict = {"home": str(home.root), "backup": None}
    if url:
        _check_postgresql(url, backup, report, log)
    else:
        _repair_sqlite(home, backup, report, log)
    cache_status = database_status(home.cache_path)
    if cache_status not in ("ok", "missing"):
        backup.mkdir(parents=True, exist_ok=True)
        for part in _sidecars(home.cache_path):
            shutil.move(part, backup / part.name)
        log(f"embedding cache: damaged ({cache_status.splitlines()[0]}); moved to {backup}, texts will be re-embedded")
        report["backup"] = str(backup)

    report["index_before"] = _index_status(home)
    log(f"index: was {report['index_before']}; rebuilding it from the database")
    if home.index_dir.exists():
        shutil.rmtree(home.index_dir)
    from critic.service import Service  # the model stack loads only when it is needed

    service = Service.load(home, log=lambda message: log(f"  {message}"))
    report["artworks"] = service.store.count()
    report["indexed"] = len(service.recommender.index)
    log(f"index: rebuilt, {report['indexed']:,} artworks indexed of {report['artworks']:,} in the database")
    return report


def _index_status(home: Home) -> str:
    from index.errors import IndexStoreError
    from index.store import VectorIndex

    try:
        return f"readable ({len(VectorIndex.load(home.index_dir)):,} vectors)"
    except IndexStoreError as exc:
        return str(exc)


def _pad_truncated(path: Path) -> None:
    header = path.read_bytes()[:100] if path.stat().st_size >= 100 else b""
    if not header.startswith(b"SQLite format 3\0"):
        return
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if page_size >= 512 and pages and path.stat().st_size < pages * page_size:
        with open(path, "r+b") as handle:
            handle.truncate(pages * page_size)


# ------------------------------------------------------- the last resort: reading pages without SQLite


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for n in range(9):
        byte = data[at + n]
        if n == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + n + 1
    raise ValueError("bad varint")


def _text_columns(payload: bytes) -> list[str | None] | None:
    """A record's columns when all are text or NULL (the artworks table's), else None."""
    size, at = _varint(payload, 0)
    types = []
    while at < size:
        kind, at = _varint(payload, at)
        types.append(kind)
    values: list[str | None] = []
    at = size
    for kind in types:
        if kind == 0:
            values.append(None)
        elif kind >= 13 and kind % 2:
            length = (kind - 13) // 2
            values.append(payload[at : at + length].decode("utf-8"))
            at += length
        else:
            return None
    return values if at <= len(payload) else None


def scan_artwork_pages(data: bytes, page_size: int = 4096) -> dict[str, str]:
    """``{id: record JSON}`` from every table-leaf page of a database image that holds artworks rows, read
    byte by byte (for a file whose first page, and so its schema, is gone). Overflow chains are followed
    while their pages are readable. Rows must look exactly like the artworks table's: three text columns
    (id, record, text_hash) whose record is JSON naming the same id. Rows that deleted or replaced records
    left in free pages can come back: the report says the raw scan was used."""
    usable = page_size
    found: dict[str, str] = {}
    pages = len(data) // page_size
    for number in range(pages):
        base = number * page_size
        start = base + (100 if number == 0 else 0)
        if data[start] != 0x0D:  # table b-tree leaf
            continue
        cells = int.from_bytes(data[start + 3 : start + 5], "big")
        for cell in range(cells):
            try:
                pointer = int.from_bytes(data[start + 8 + 2 * cell : start + 10 + 2 * cell], "big")
                payload_size, at = _varint(data, base + pointer)
                _, at = _varint(data, at)  # rowid
                payload = _payload(data, at, payload_size, usable, page_size)
                values = _text_columns(payload) if payload is not None else None
                if not values or len(values) != 3 or values[0] is None or values[1] is None:
                    continue
                record = json.loads(values[1])
                if isinstance(record, dict) and record.get("id") == values[0]:
                    found.setdefault(values[0], values[1])
            except (IndexError, ValueError):
                continue
    return found


def _payload(data: bytes, at: int, size: int, usable: int, page_size: int) -> bytes | None:
    most = usable - 35
    if size <= most:
        return data[at : at + size]
    least = (usable - 12) * 32 // 255 - 23
    local = least + (size - least) % (usable - 4)
    local = local if local <= most else least
    parts = [data[at : at + local]]
    following = int.from_bytes(data[at + local : at + local + 4], "big")
    remaining = size - local
    seen = set()
    while remaining > 0:
        if following == 0 or following in seen or following * page_size > len(data):
            return None
        seen.add(following)
        base = (following - 1) * page_size
        chunk = min(remaining, usable - 4)
        parts.append(data[base + 4 : base + 4 + chunk])
        remaining -= chunk
        following = int.from_bytes(data[base : base + 4], "big")
    return b"".join(parts)
