"""API keys: random tokens handed out once, stored only as SHA-256 digests in the home's ``api_keys.sqlite``.

A token carries 256 random bits, so a plain SHA-256 of it cannot be brute-forced and needs no salt or slow
hash; a stolen key file gives no usable key. ``critic keys create NAME`` prints the token once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from critic.home import Home

KEY_FILE = "api_keys.sqlite"
TOKEN_PREFIX = "critic_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_keys (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, "
    "created_at TEXT NOT NULL, revoked_at TEXT)"
)


class KeyNameError(ValueError):
    """A key name that is malformed, already in use, or unknown."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The keys of one home.

    Example:
        >>> import tempfile
        >>> keys = KeyStore(Path(tempfile.mkdtemp()) / KEY_FILE)
        >>> token = keys.create("gallery")
        >>> keys.verify(token), keys.verify("critic_guess")
        ('gallery', None)
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Created private: the digests are not secrets, but nobody else needs to read them.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with self._db() as db:
            db.execute(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    def create(self, name: str) -> str:
        """A new key called ``name``; returns the token, which is not stored and cannot be shown again."""
        if not _NAME.match(name):
            raise KeyNameError(
                f"bad key name {name!r}: 1-64 letters, digits, . _ @ - (starting with a letter or digit)"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db() as db:
            row = db.execute("SELECT revoked_at FROM api_keys WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] is None:
                raise KeyNameError(f"a key named {name!r} exists; revoke it first or pick another name")
            db.execute(
                "INSERT OR REPLACE INTO api_keys (name, digest, created_at, revoked_at) VALUES (?, ?, ?, NULL)",
                (name, digest(token), _now()),
            )
        return token

    def verify(self, token: str | None) -> str | None:
        """The name of the active key ``token`` belongs to, or None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        row = (
            self._db()
            .execute("SELECT name FROM api_keys WHERE digest = ? AND revoked_at IS NULL", (digest(token),))
            .fetchone()
        )
        return row[0] if row else None

    def list(self) -> list[ApiKey]:
        rows = self._db().execute("SELECT name, created_at, revoked_at FROM api_keys ORDER BY created_at, name")
        return [ApiKey(*row) for row in rows]

    def revoke(self, name: str) -> bool:
        """Revoke the key ``name`` at once; False if there is no active key of that name."""
        with self._db() as db:
            changed = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (_now(), name)
            ).rowcount
        return changed > 0


def key_store(home: Home | str | Path) -> KeyStore:
    root = home.root if isinstance(home, Home) else Path(home)
    return KeyStore(root / KEY_FILE)


def create_key(home: Home | str | Path, name: str) -> str:
    """Create a key for ``home``'s API and return its token (for ``critic keys create NAME``)."""
    return key_store(home).create(name)


def list_keys(home: Home | str | Path) -> list[ApiKey]:
    """Every key of ``home``, revoked ones included (for ``critic keys list``)."""
    return key_store(home).list()


def revoke_key(home: Home | str | Path, name: str) -> bool:
    """Revoke the key ``name`` (for ``critic keys revoke NAME``); False if no active key has that name."""
    return key_store(home).revoke(name)
