"""Where a build lives: ``--home``, else ``$CRITIC_HOME``, else the user's data directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from critic.atomic import write_atomically


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
    def cache_path(self) -> Path:
        return self.root / "embeddings.sqlite"

    @property
    def keys_path(self) -> Path:
        """The API keys (critic.keys), stored hashed."""
        return self.root / "api_keys.sqlite"

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
