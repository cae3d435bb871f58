"""API keys: random tokens handed out once, stored only as SHA-256 digests in the home's ``api_keys.sqlite``
(or, with ``CRITIC_DATABASE_URL``, in PostgreSQL, where every node sees a revocation at once).

A token carries 256 random bits, so a plain SHA-256 of it cannot be brute-forced and needs no salt or slow
hash; a stolen key file gives no usable key. ``critic keys create NAME [--scope read|write]`` prints the
token once. A ``read`` key may only read (it is the one to put in a public page when reads need a key); a
``write`` key may also add, change and remove artworks. Keys made before scopes existed are write keys.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from critic.home import Home
from critic.sql import StoreError, is_url, open_database, redact

SCOPES = ("read", "write")
DEFAULT_SCOPE = "write"
TOKEN_PREFIX = "critic_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_WRITE = "api_keys"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_keys (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, "
    "created_at TEXT NOT NULL, revoked_at TEXT, scope TEXT NOT NULL DEFAULT 'write')"
)


class KeyNameError(ValueError):
    """A key name that is malformed, already in use, or unknown (or a scope that does not exist)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    created_at: str
    revoked_at: str | None
    scope: str = DEFAULT_SCOPE

    @property
    def can_write(self) -> bool:
        return self.scope == "write"

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
        >>> keys = KeyStore(Path(tempfile.mkdtemp()) / "api_keys.sqlite")
        >>> token = keys.create("gallery")
        >>> keys.verify(token).name, keys.verify(token).scope, keys.verify("critic_guess")
        ('gallery', 'write', None)
    """

    def __init__(self, location: str | Path):
        """The keys at ``location``: an SQLite file's path, or a ``postgresql://`` URL."""
        if not is_url(location):
            path = Path(location)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Created private: the digests are not secrets, but nobody else needs to read them.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.db = open_database(location)
        try:
            with self.db.transaction(lock=_WRITE) as db:
                db.execute(_SCHEMA)
                if self.db.dialect == "sqlite":
                    columns = {row[1] for row in db.execute("PRAGMA table_info(api_keys)")}
                    if "scope" not in columns:  # a keys database from before scopes: its keys could write
                        db.execute("ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'")
        except self.db.errors as exc:
            raise StoreError(f"key database {redact(location)} is unusable ({exc}); {self.db.remedy}") from exc

    def create(self, name: str, scope: str = DEFAULT_SCOPE) -> str:
        """A new key called ``name``; returns the token, which is not stored and cannot be shown again."""
        if scope not in SCOPES:
            raise KeyNameError(f"bad key scope {scope!r}: read or write")
        if not _NAME.match(name):
            raise KeyNameError(
                f"bad key name {name!r}: 1-64 letters, digits, . _ @ - (starting with a letter or digit)"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.transaction(lock=_WRITE) as db:
            row = db.execute("SELECT revoked_at FROM api_keys WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] is None:
                raise KeyNameError(f"a key named {name!r} exists; revoke it first or pick another name")
            db.execute(
                "INSERT INTO api_keys (name, digest, created_at, revoked_at, scope) VALUES (?, ?, ?, NULL, ?) "
                "ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, created_at = excluded.created_at, "
                "revoked_at = NULL, scope = excluded.scope",
                (name, digest(token), _now(), scope),
            )
        return token

    def verify(self, token: str | None) -> ApiKey | None:
        """The active key ``token`` belongs to, or None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT name, created_at, revoked_at, scope FROM api_keys WHERE digest = ? AND revoked_at IS NULL",
                (digest(token),),
            ).fetchone()
        return ApiKey(*row) if row else None

    def list(self) -> list[ApiKey]:
        with self.db.transaction() as db:
            rows = db.execute(
                "SELECT name, created_at, revoked_at, scope FROM api_keys ORDER BY created_at, name"
            ).fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, name: str) -> bool:
        """Revoke the key ``name`` at once; False if there is no active key of that name."""
        with self.db.transaction(lock=_WRITE) as db:
            changed = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (_now(), name)
            ).rowcount
        return changed > 0


def key_store(home: Home | str | Path) -> KeyStore:
    return KeyStore((home if isinstance(home, Home) else Home(Path(home))).keys_location)


def create_key(home: Home | str | Path, name: str, scope: str = DEFAULT_SCOPE) -> str:
    """Create a key for ``home``'s API and return its token (for ``critic keys create NAME [--scope]``)."""
    return key_store(home).create(name, scope)


def list_keys(home: Home | str | Path) -> list[ApiKey]:
    """Every key of ``home``, revoked ones included (for ``critic keys list``)."""
    return key_store(home).list()


def revoke_key(home: Home | str | Path, name: str) -> bool:
    """Revoke the key ``name`` (for ``critic keys revoke NAME``); False if no active key has that name."""
    return key_store(home).revoke(name)
