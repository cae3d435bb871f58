"""Where a build lives: ``--home``, else ``$CRITIC_HOME``, else the user's data directory.

``$CRITIC_DATABASE_URL`` (``postgresql://...``) moves the source of truth (artworks, their change feed, API
keys, rate-limit counters) out of the home into PostgreSQL, shared by several API nodes; each node's home still
holds its own models, embedding cache and index replica.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from critic.atomic import write_atomically


def database_url() -> str | None:
    """The PostgreSQL database every node shares (``$CRITIC_DATABASE_URL``), or None for the home's SQLite files."""
    return os.environ.get("CRITIC_DATABASE_URL") or None


def default_home() -> Path:
    return Path(os.environ.get("CRITIC_HOME") or user_data_dir("critic", appauthor=False))


@dataclass(frozen=True)
class Home:
    """The files of one build. Everything else can be rebuilt from ``artworks.sqlite``."""

    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> Home:
        return cls(Path(path).expanduser() if path else default_home())

    @property
    def store_path(self) -> Path:
        return self.root / "artworks.sqlite"

    @property
    def store_location(self) -> str:
        """Where the artworks live: ``$CRITIC_DATABASE_URL`` when set, else ``store_path``."""
        return database_url() or str(self.store_path)

    @property
    def cache_path(self) -> Path:
        return self.root / "embeddings.sqlite"

    @property
    def critiques_path(self) -> Path:
        """Pre-generated critiques (critic.critiques): derived, so kept out of ``artworks.sqlite``."""
        return self.root / "critiques.sqlite"

    @property
    def keys_path(self) -> Path:
        """The API keys (critic.keys), stored hashed."""
        return self.root / "api_keys.sqlite"

    @property
    def keys_location(self) -> str:
        """Where the API keys live: ``$CRITIC_DATABASE_URL`` when set, else ``keys_path``."""
        return database_url() or str(self.keys_path)

    @property
    def run_dir(self) -> Path:
        """What the workers of a running server share: rate-limit counters, generation slots."""
        return self.root / "run"

    @property
    def vae_dir(self) -> Path:
        return self.root / "vae"

    @property
    def writer_dir(self) -> Path:
        return self.root / "writer"

    @property
    def eval_dir(self) -> Path:
        """What `critic eval` keeps between runs (its own embedding cache, variant models): never served."""
        return self.root / "eval"

    @property
    def shards_dir(self) -> Path:
        """What `critic build --engine ray` computed, as Parquet shards: a rerun redoes only those missing."""
        return self.root / "shards"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def info_path(self) -> Path:
        return self.root / "build.json"

    def read_info(self) -> dict:
        try:
            return json.loads(self.info_path.read_text())
        except FileNotFoundError:
            return {}

    def write_info(self, info: dict) -> None:
        write_atomically(self.info_path, json.dumps(info, indent=1, sort_keys=True).encode())
