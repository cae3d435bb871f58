"""A FAISS index over unit latent vectors, keyed by artwork id, saved atomically with a checksummed manifest.

Cosine similarity is the inner product of L2-normalised vectors. Below ``ivf_threshold`` vectors the index is
exact (``IndexIDMap2`` over ``IndexFlatIP``); from there on it is an ``IndexIVFFlat`` with a hash-table direct
map, which keeps exact scores, adds and removes ids in place and honours id selectors during the search. From
``pq_threshold`` on, the lists hold product-quantised codes (``IndexIVFPQ``, about dim / 2 bytes a vector instead of
4 * dim): scores and stored vectors are then approximations decoded from the codes.
HNSW was not chosen: FAISS cannot remove from it, its recall at 1M was lower (docs/results.md: 0.96 against 0.9999)
and a selective filter cuts its graph, so it may return fewer than k hits that exist. See bench/search.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from faiss.contrib.inspect_tools import get_invlist

from critic.atomic import fsync_dir, write_atomically
from critic.vectors import normalise
from index.errors import IndexCorruptError, IndexMismatchError, IndexMissingError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: From this many vectors on the index is IVF. bench/search.py (64-d, CPU time of one query): exact search
#: takes 1.0 ms at 15k, 3.4 ms at 50k, 5.0 ms at 100k (linear); IVF takes 1.0 ms at 50k with recall@10
#: 0.998. Below 50k exact search stays inside the budget with full recall and no k-means training (the
#: Walters collection, 15k, stays exact); above it, it would soon pass 5 ms.
DEFAULT_IVF_THRESHOLD = 50_000
#: From this many vectors on the index is IVF-PQ. Justified by memory, not speed: the Walters index is 756-d, so
#: IVF-Flat holds 3.1 KB a vector, 3 GB per replica at 1M (7.5 times the 400 MB a serving worker may take).
#: PQ costs recall, so every collection below 1M keeps IVF-Flat's exact scores.
DEFAULT_PQ_THRESHOLD = 1_000_000
#: Dimensions per PQ sub-quantiser (8-bit codes each): the code size is about dim / PQ_DIMS_PER_CODE bytes.
#: Measured at 100k synthetic 756-d vectors (index/synthetic.py, noisy clusters: a hard case for PQ), bytes a
#: vector with ids and direct map, and recall@10 against exact search: IVF-Flat 3,086 B, 0.996; PQ with 8, 4
#: and 2 dimensions a code 154 B, 0.21; 259 B, 0.44; 448 B, 0.81. Recall decides: 2, a seventh of the memory.
PQ_DIMS_PER_CODE = 2
#: Inverted lists probed per query: the smallest power of two with recall@10 >= 0.95 at 1M in
#: bench/search.py (0.978, 2.2 ms; 64 gave 0.940); nlist grows as 4 sqrt(n), so smaller collections get
#: more recall from it (0.998 at 50k).
DEFAULT_NPROBE = 128
#: A filtered search considers at least this many of the filter's vectors: a filter that selects fewer is
#: ranked exactly from its gathered vectors; past it, IVF probes enough lists to expect this many of them
#: (a bitmap selector skips the others for a bit test each, without computing their scores).
FILTER_DEPTH = 2048
#: k-means trains on at most this many vectors per list: enough for stable centroids, 4x faster than all.
TRAIN_POINTS_PER_LIST = 64
#: An IVF index is retrained when its size leaves [trained / RETRAIN_FACTOR, trained * RETRAIN_FACTOR].
RETRAIN_FACTOR = 4


def nlist_for(count: int) -> int:
    """Inverted lists for ``count`` vectors: 4 * sqrt(n), the low end of FAISS's guidance (fast to train),
    and at most n / 39 so that k-means has the 39 points per centroid FAISS asks for."""
    return max(1, min(int(4 * math.sqrt(count)), count // 39))


def pq_codes_for(dim: int) -> int:
    """Sub-quantisers of an IVF-PQ index of ``dim``-d vectors: the largest divisor of ``dim`` that leaves each
    at least PQ_DIMS_PER_CODE dimensions (FAISS needs a divisor).

    Example:
        >>> pq_codes_for(756), pq_codes_for(63)
        (378, 21)
    """
    return max(m for m in range(1, max(1, dim // PQ_DIMS_PER_CODE) + 1) if dim % m == 0)


def training_size(count: int) -> int:
    """How many of ``count`` vectors an IVF or IVF-PQ index of them trains on: what its k-means (coarse lists, and
    the 256 centroids of each PQ code) would sample anyway.

    Example:
        >>> training_size(1_000), training_size(1_000_000)
        (1000, 256000)
    """
    return min(count, max(nlist_for(count) * TRAIN_POINTS_PER_LIST, 256 * 256))


@dataclass(frozen=True)
class IndexDiff:
    """What an index lacks against the records it should hold, by fingerprint (e.g. the text hash)."""

    missing: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def to_encode(self) -> list[str]:
        """Ids whose vectors must be (re)computed and upserted."""
        return self.missing + self.changed


class VectorIndex:
    """Unit vectors by artwork id with cosine search, filters inside the search, and atomic persistence.

    Thread-safe: one lock serialises searches and changes (a search takes well under a millisecond).

    Example:
        >>> index = VectorIndex(2)
        >>> index.upsert(["a", "b"], np.array([[1.0, 0.0], [0.6, 0.8]]))
        >>> [(i, round(s, 3)) for i, s in index.search(np.array([1.0, 0.1]), k=1)]
        [('a', 0.995)]
    """

    #: See FILTER_DEPTH; an instance may tune it (tests set 0 to reach the selector paths with small data).
    filter_depth: int = FILTER_DEPTH
    #: True while ``streamed`` fills an index sized in advance: its size says nothing yet about its shape.
    _filling: bool = False

    def __init__(
        self,
        dim: int,
        *,
        identity: Mapping[str, Any] | None = None,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        nprobe: int = DEFAULT_NPROBE,
        pq_threshold: int = DEFAULT_PQ_THRESHOLD,
    ):
        if dim <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        self.dim = dim
        self.identity: dict[str, Any] = _json_normalised(dict(identity or {}))
        self.ivf_threshold = ivf_threshold
        self.pq_threshold = pq_threshold
        self.nprobe = nprobe
        self._index: faiss.Index = _new_flat(dim)
        self._mapped = False  # the FAISS structure is a read-only memory map of the saved file (load(mapped=True))
        self._trained_count = 0
        # Keys are dense int64 FAISS ids handed out in order and never reused, so that a filter can travel
        # to FAISS as a bitmap (cheap to build for any share of the collection) rather than a hash set.
        self._ids: dict[int, str] = {}
        self._keys: dict[str, int] = {}
        self._next_key = 0
        self._live = np.zeros(0, dtype=bool)  # by key: does the index hold it (vectorised membership)
        self._fingerprints: dict[str, str] = {}
        self._lock = threading.RLock()

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        vectors: np.ndarray,
        *,
        fingerprints: Sequence[str] | None = None,
        identity: Mapping[str, Any] | None = None,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        nprobe: int = DEFAULT_NPROBE,
        pq_threshold: int = DEFAULT_PQ_THRESHOLD,
    ) -> VectorIndex:
        """A new index holding ``vectors`` (n, dim) under ``ids``; the type follows the size."""
        matrix = np.asarray(vectors)
        if matrix.ndim != 2:
            raise ValueError(f"vectors must be a 2-d array, got shape {matrix.shape}")
        index = cls(
            matrix.shape[1], identity=identity, ivf_threshold=ivf_threshold, nprobe=nprobe, pq_threshold=pq_threshold
        )
        index.upsert(ids, matrix, fingerprints)
        return index

    @classmethod
    def streamed(
        cls,
        count: int,
        training: np.ndarray,
        batches: Iterable[tuple[Sequence[str], np.ndarray, Sequence[str]]],
        *,
        identity: Mapping[str, Any] | None = None,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        nprobe: int = DEFAULT_NPROBE,
        pq_threshold: int = DEFAULT_PQ_THRESHOLD,
    ) -> VectorIndex:
        """The index ``build`` would make of ``count`` vectors, filled from ``batches`` of ``(ids, vectors,
        fingerprints)`` so that the vectors never sit in memory at once: its type follows ``count``, and IVF lists
        train on ``training`` (``training_size(count)`` of the vectors, spread over the collection).

        Example:
            >>> rows = np.eye(3, dtype=np.float32)
            >>> index = VectorIndex.streamed(3, rows[:0], [(["a", "b"], rows[:2], ["", ""]), (["c"], rows[2:], [""])])
            >>> len(index), index.kind
            (3, 'flat')
        """
        matrix = np.asarray(training, dtype=np.float32)
        index = cls(matrix.shape[1], identity=identity, ivf_threshold=ivf_threshold, nprobe=nprobe,
                    pq_threshold=pq_threshold)
        index._index, index._trained_count = index._structure_for(count, _unit_rows(matrix, index.dim)
                                                                  if len(matrix) else matrix)
        index._filling = True
        try:
            for ids, vectors, fingerprints in batches:
                index.upsert(ids, vectors, fingerprints)
        finally:
            index._filling = False
        index._reshape_if_due()
        return index

    # ----------------------------------------------------------------- reading

    @property
    def kind(self) -> str:
        """``"flat"`` (exact), ``"ivf"`` (exact scores) or ``"ivfpq"`` (compressed)."""
        if isinstance(self._index, faiss.IndexIVFPQ):
            return "ivfpq"
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    @property
    def nlist(self) -> int | None:
        return self._index.nlist if isinstance(self._index, faiss.IndexIVF) else None

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, artwork_id: object) -> bool:
        return artwork_id in self._keys

    def ids(self) -> list[str]:
        """Indexed artwork ids, sorted."""
        return sorted(self._keys)

    def key_of(self, artwork_id: str) -> int | None:
        """The stable int64 key (FAISS id) of an indexed artwork; None when it is not indexed."""
        return self._keys.get(artwork_id)

    def fingerprint(self, artwork_id: str) -> str | None:
        return self._fingerprints.get(artwork_id)

    def diff(self, fingerprints: Mapping[str, str]) -> IndexDiff:
        """Compare with the wanted ``{artwork id: fingerprint}``, e.g. ``ArtworkStore.text_hashes()``."""
        with self._lock:
            return IndexDiff(
                missing=sorted(i for i in fingerprints if i not in self._keys),
                changed=sorted(i for i, f in fingerprints.items() if i in self._keys and self._fingerprints[i] != f),
                removed=sorted(i for i in self._keys if i not in fingerprints),
            )

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored unit vectors of ``ids``, shape (len(ids), dim); KeyError names an id not indexed."""
        with self._lock:
            return self._stored(np.array([self._key(i) for i in ids], dtype=np.int64))

    def vector(self, artwork_id: str) -> np.ndarray:
        return self.vectors([artwork_id])[0]

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allow: Iterable[str] | np.ndarray | None = None,
        exclude: Iterable[str] = (),
    ) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, cosine)`` for ``query``, best first, ties broken by id.

        ``allow`` (ids, or an int64 array of their keys as ``FilterIndex.select`` gives) and
        ``exclude`` act inside the FAISS search through an id selector, so ``k`` hits come back whenever
        ``k`` eligible vectors exist. Ids not indexed are ignored.

        The answer is deterministic and prefix-consistent: asking for more hits never reorders the first
        ones, which is what stable pagination needs. An IVF index ranks the eligible vectors of the probed
        lists first and, past them (a deep page, or a filter the probed lists hardly hold), goes on with the
        exact ranking of the rest. A filter that selects at most ``filter_depth`` vectors is ranked exactly
        from those vectors alone, whatever the index type; a broader one raises nprobe so that the probed
        lists are expected to hold ``filter_depth`` of its vectors.
        """
        unit = _unit_rows(np.asarray(query, dtype=np.float32).reshape(1, -1), self.dim)
        with self._lock:
            allowed = None if allow is None else self._key_array(allow)
            excluded = self._key_array(exclude)
            if allowed is not None and len(excluded):
                allowed = np.setdiff1d(allowed, excluded, assume_unique=True)
            eligible = len(allowed) if allowed is not None else len(self._keys) - len(excluded)
            if k <= 0 or eligible <= 0:
                return []
            if allowed is not None and len(allowed) <= self.filter_depth:
                return self._exact(unit, k, allowed, excluded)
            if not isinstance(self._index, faiss.IndexIVF):
                return self._ranked(unit, k, allowed, excluded, nprobe=0)
            nlist = self._index.nlist
            nprobe = min(nlist, max(self.nprobe, math.ceil(self.filter_depth * nlist / eligible)))
            probed = self._ranked(unit, k, allowed, excluded, nprobe)
            if len(probed) == k or nprobe == nlist:
                return probed
            seen = np.array([self._keys[i] for i, _ in probed], dtype=np.int64)
            rest_allowed = None if allowed is None else np.setdiff1d(allowed, seen, assume_unique=True)
            return probed + self._exact(unit, k - len(probed), rest_allowed, np.union1d(excluded, seen))

    # ---------------------------------------------------------------- changing

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, fingerprints: Sequence[str] | None = None) -> None:
        """Add or replace vectors by id (normalised here); keys stay stable across replacements."""
        ids = list(ids)
        unit = _unit_rows(np.asarray(vectors, dtype=np.float32), self.dim, len(ids))
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in one upsert")
        if fingerprints is not None and len(fingerprints) != len(ids):
            raise ValueError(f"{len(fingerprints)} fingerprints for {len(ids)} ids")
        if not ids:
            return
        with self._lock:
            keys = np.array([self._keys.get(i, -1) for i in ids], dtype=np.int64)
            fresh = keys < 0
            keys[fresh] = np.arange(self._next_key, self._next_key + int(fresh.sum()))
            self._next_key += int(fresh.sum())
            replaced = np.array([k for i, k in zip(ids, keys.tolist(), strict=True) if i in self._keys], np.int64)
            self._writable()
            if len(replaced):
                self._index.remove_ids(replaced)
            if self.kind == "flat" and self._index.ntotal + len(keys) >= self.ivf_threshold:
                # Growing past the threshold: train the IVF lists on everything at once.
                held = np.array(list(self._ids.keys() - set(replaced.tolist())), dtype=np.int64)
                self._reset(np.concatenate([held, keys]), np.concatenate([self._stored(held), unit]))
            else:
                self._index.add_with_ids(unit, keys)
            for n, (artwork_id, key) in enumerate(zip(ids, keys.tolist(), strict=True)):
                self._ids[key] = artwork_id
                self._keys[artwork_id] = key
                self._fingerprints[artwork_id] = fingerprints[n] if fingerprints is not None else ""
            self._set_live(keys, True)
            self._reshape_if_due()

    def remove(self, ids: Iterable[str]) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""
        with self._lock:
            present = [i for i in dict.fromkeys(ids) if i in self._keys]
            if not present:
                return 0
            gone = np.array([self._keys[i] for i in present], dtype=np.int64)
            self._writable()
            self._index.remove_ids(gone)
            self._set_live(gone, False)
            for artwork_id in present:
                del self._ids[self._keys.pop(artwork_id)]
                del self._fingerprints[artwork_id]
            self._reshape_if_due()
            return len(present)

    def rebuild(self) -> None:
        """Rebuild the FAISS structure from the stored vectors (retrains IVF lists); ids and scores stay."""
        with self._lock:
            keys = np.array(list(self._ids), dtype=np.int64)
            self._reset(keys, self._stored(keys))

    # -------------------------------------------------------------- persisting

    def save(self, path: str | Path) -> Path:
        """Write the index to the folder ``path`` atomically; returns the manifest's path.

        Data files carry their checksum in their name and are complete on disk (fsynced) before the manifest
        that names them is renamed into place, so a crash leaves either the old or the new index readable.
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            ids = list(self._keys)
            listing = {
                "ids": ids,
                "keys": [self._keys[i] for i in ids],
                "fingerprints": [self._fingerprints[i] for i in ids],
                "next_key": self._next_key,
            }
            payloads = {
                "index": (".faiss", faiss.serialize_index(self._index).tobytes()),
                "ids": (".json", json.dumps(listing).encode("utf-8")),
            }
            manifest: dict[str, Any] = {
                "format": FORMAT_VERSION,
                "identity": self.identity,
                "dim": self.dim,
                "count": len(ids),
                "index_type": self.kind,
                "metric": "inner_product",
                "nlist": self.nlist,
                "nprobe": self.nprobe,
                "ivf_threshold": self.ivf_threshold,
                "pq_threshold": self.pq_threshold,
                "trained_count": self._trained_count,
                "faiss_version": faiss.__version__,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": {},
            }
        for role, (suffix, data) in payloads.items():
            digest = hashlib.sha256(data).hexdigest()
            name = f"{role}-{digest[:16]}{suffix}"
            write_atomically(folder / name, data)
            manifest["files"][role] = {"name": name, "sha256": digest, "bytes": len(data)}
        write_atomically(folder / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
        fsync_dir(folder)
        kept = {entry["name"] for entry in manifest["files"].values()} | {MANIFEST}
        for stale in folder.iterdir():
            if stale.name not in kept and (stale.name.startswith(("index-", "ids-", ".tmp-"))):
                stale.unlink(missing_ok=True)
        return folder / MANIFEST

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        dim: int | None = None,
        identity: Mapping[str, Any] | None = None,
        mapped: bool = False,
    ) -> VectorIndex:
        """Load a saved index, checked whole and, when given, against the expected ``dim`` and ``identity``.

        ``mapped`` memory-maps the vectors (or IVF lists) from the file instead of copying them into the
        process: every process that serves the index shares one copy in the page cache. A mapped index is
        read-only to FAISS, so the first change copies it into memory (``_writable``).

        Raises IndexMissingError (nothing saved there), IndexCorruptError (a file missing, truncated or not
        matching its checksum) or IndexMismatchError (another format, dimension or identity).
        """
        folder = Path(path)
        manifest = _read_manifest(folder)
        if manifest["format"] != FORMAT_VERSION:
            raise IndexMismatchError(f"index at {folder} has format {manifest['format']}, expected {FORMAT_VERSION}")
        if dim is not None and manifest["dim"] != dim:
            raise IndexMismatchError(f"index at {folder} holds {manifest['dim']}-d vectors, expected {dim}-d")
        if identity is not None:
            expected = _json_normalised(dict(identity))
            differing = sorted(
                k
                for k in expected.keys() | manifest["identity"].keys()
                if expected.get(k) != manifest["identity"].get(k)
            )
            if differing:
                raise IndexMismatchError(f"index at {folder} was built for another {', '.join(differing)}")
        data = {role: _read_checked(folder, entry) for role, entry in manifest["files"].items()}
        try:
            if mapped:
                del data["index"]  # checked; FAISS maps the file itself
                # A flat index maps its vectors (IO_FLAG_MMAP_IFC), an IVF index its inverted lists (IO_FLAG_MMAP).
                mapping = faiss.IO_FLAG_MMAP_IFC if manifest["index_type"] == "flat" else faiss.IO_FLAG_MMAP
                flags = mapping | faiss.IO_FLAG_READ_ONLY
                faiss_index = faiss.read_index(str(folder / manifest["files"]["index"]["name"]), flags)
            else:
                faiss_index = faiss.deserialize_index(np.frombuffer(data["index"], dtype=np.uint8))
            listing = json.loads(data["ids"])
            ids, keys, fingerprints = listing["ids"], listing["keys"], listing["fingerprints"]
            next_key = int(listing["next_key"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"index at {folder} cannot be read: {str(exc).splitlines()[0][:120]}") from exc
        if (
            not (faiss_index.ntotal == len(ids) == len(keys) == len(fingerprints) == manifest["count"])
            or faiss_index.d != manifest["dim"]
            or len(set(keys)) != len(keys)
            or (keys and not 0 <= min(keys) <= max(keys) < next_key)
        ):
            raise IndexCorruptError(f"index at {folder} disagrees with its manifest (count or dimension)")
        index = cls(
            manifest["dim"],
            identity=manifest["identity"],
            ivf_threshold=manifest["ivf_threshold"],
            nprobe=manifest["nprobe"],
            # Indexes saved before IVF-PQ existed have no such entry.
            pq_threshold=int(manifest.get("pq_threshold", DEFAULT_PQ_THRESHOLD)),
        )
        index._index = faiss_index
        index._mapped = mapped
        index._trained_count = manifest["trained_count"]
        index._keys = dict(zip(ids, keys, strict=True))
        index._ids = dict(zip(keys, ids, strict=True))
        index._next_key = next_key
        index._set_live(np.array(keys, dtype=np.int64), True)
        index._fingerprints = dict(zip(ids, fingerprints, strict=True))
        return index

    # ----------------------------------------------------------------- private

    def _key(self, artwork_id: str) -> int:
        try:
            return self._keys[artwork_id]
        except KeyError:
            raise KeyError(f"artwork {artwork_id!r} is not indexed") from None

    def _key_array(self, ids: Iterable[str] | np.ndarray) -> np.ndarray:
        if isinstance(ids, np.ndarray) and ids.dtype == np.int64:
            # Keys already, as FilterIndex gives them (sorted, unique); keep those the index holds.
            ids = ids[(ids >= 0) & (ids < len(self._live))]
            ids = ids[self._live[ids]]
            return ids if bool(np.all(ids[1:] > ids[:-1])) else np.unique(ids)
        keys = self._keys
        found = np.fromiter((keys[i] for i in ids if i in keys), dtype=np.int64)
        return np.unique(found) if len(found) else found

    def _exact(
        self, unit: np.ndarray, k: int, allowed: np.ndarray | None, excluded: np.ndarray
    ) -> list[tuple[str, float]]:
        """The exact top ``k`` by (score desc, id asc) among the selected vectors, however they are held."""
        if allowed is None or len(allowed) > self.filter_depth:
            return self._ranked(unit, k, allowed, excluded, nprobe=getattr(self._index, "nlist", 0))
        present = allowed
        if not len(present):
            return []
        scores = self._index.reconstruct_batch(present) @ unit[0]
        if len(scores) > k:
            # Keep every vector that ties with the k-th score so that the id order decides among them.
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            present, scores = present[scores >= kth], scores[scores >= kth]
        ids = self._ids
        hits = [(ids[key], s) for key, s in zip(present.tolist(), scores.tolist(), strict=True)]
        return _by_score_then_id(hits)[:k]

    def _ranked(
        self, unit: np.ndarray, k: int, allowed: np.ndarray | None, excluded: np.ndarray, nprobe: int
    ) -> list[tuple[str, float]]:
        """Exactly the top ``k`` selected vectors of the searched lists by (score desc, id asc)."""
        if allowed is not None:
            mask = np.zeros(len(self._live), dtype=bool)
            mask[allowed] = True
            bitmap = np.packbits(mask, bitorder="little")  # kept referenced while the search runs
            selector: faiss.IDSelector | None = faiss.IDSelectorBitmap(bitmap)
        elif len(excluded):
            inner = faiss.IDSelectorBatch(excluded)  # kept referenced while the search runs
            selector = faiss.IDSelectorNot(inner)
        else:
            selector = None
        if isinstance(self._index, faiss.IndexIVF):
            params: faiss.SearchParameters | None = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        fetch = k + 1
        while True:
            scores, keys = self._index.search(unit, fetch, params=params)
            found = keys[0] >= 0
            scores, keys = scores[0][found], keys[0][found]
            # A tie across the cut would let FAISS's heap order pick the winner: widen until it is whole.
            if len(keys) < fetch or scores[k - 1] != scores[-1]:
                break
            fetch *= 2
        ids = self._ids
        return _by_score_then_id([(ids[key], s) for s, key in zip(scores.tolist(), keys.tolist(), strict=True)])[:k]

    def _writable(self) -> None:
        """Copy a memory-mapped FAISS structure into memory before changing it (FAISS aborts the process on a
        write to a mapped flat index)."""
        if not self._mapped:
            return
        if isinstance(self._index, faiss.IndexIVF):
            # The lists are an on-disk structure that serialises as a reference to the file: copy list by list.
            mapped = self._index.invlists
            lists = faiss.ArrayInvertedLists(mapped.nlist, mapped.code_size)
            for number in range(mapped.nlist):
                ids, codes = get_invlist(mapped, number)
                if len(ids):
                    lists.add_entries(number, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(codes))
            lists.this.disown()  # the index owns (and frees) them from here on
            self._index.replace_invlists(lists, True)
        else:
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
        self._mapped = False

    def _set_live(self, keys: np.ndarray, live: bool) -> None:
        if len(keys) and keys.max() >= len(self._live):
            grown = np.zeros(max(2 * len(self._live), int(keys.max()) + 1), dtype=bool)
            grown[: len(self._live)] = self._live
            self._live = grown
        self._live[keys] = live

    def _stored(self, keys: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(keys) if len(keys) else np.zeros((0, self.dim), np.float32)

    def _reset(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the FAISS structure by one of the type the size calls for, holding exactly these vectors."""
        self._index, self._trained_count = self._structure_for(len(keys), vectors)
        self._mapped = False
        if len(keys):
            self._index.add_with_ids(vectors, keys)

    def _structure_for(self, count: int, training: np.ndarray) -> tuple[faiss.Index, int]:
        """An empty FAISS structure of the type ``count`` vectors call for, trained on ``training``; with the
        count it was trained for (0: flat)."""
        if count < self.ivf_threshold:
            return _new_flat(self.dim), 0
        codes = pq_codes_for(self.dim) if count >= self.pq_threshold else None
        return _new_ivf(training, nlist_for(count), codes), count

    def _reshape_if_due(self) -> None:
        if self._filling:
            return
        count = len(self._keys)
        if self.kind == "flat":
            due = count >= self.ivf_threshold
        else:
            # Each kind is left with the same hysteresis: past its threshold, or back below half of it.
            compressed = self.kind == "ivfpq"
            due = (
                count < self.ivf_threshold // 2
                or (count < self.pq_threshold // 2 if compressed else count >= self.pq_threshold)
                or count > self._trained_count * RETRAIN_FACTOR
                or count < self._trained_count // RETRAIN_FACTOR
            )
        if due:
            self.rebuild()


def _by_score_then_id(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))


def _new_flat(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _new_ivf(vectors: np.ndarray, nlist: int, pq_codes: int | None = None) -> faiss.IndexIVF:
    """IVF-Flat, or IVF-PQ with ``pq_codes`` 8-bit sub-quantisers, trained on ``vectors``."""
    dim = vectors.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    if pq_codes is None:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_codes, 8, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True  # centroids on the unit sphere, like the vectors they hold
    index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    index.train(vectors)
    # A hash-table direct map lets remove_ids and reconstruct work by id without scanning every list.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def _unit_rows(matrix: np.ndarray, dim: int, rows: int | None = None) -> np.ndarray:
    if matrix.ndim != 2 or matrix.shape[1] != dim or (rows is not None and matrix.shape[0] != rows):
        want = f"({rows if rows is not None else 'n'}, {dim})"
        raise ValueError(f"vectors must have shape {want}, got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("vectors contain NaN or infinity")
    if not np.linalg.norm(matrix, axis=1).all():
        raise ValueError("a zero vector has no direction to compare")
    return np.ascontiguousarray(normalise(matrix))


def _json_normalised(value: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except TypeError as exc:
        raise ValueError(f"identity must be JSON-serialisable: {exc}") from None


_MANIFEST_KEYS = {
    "format": int,
    "identity": dict,
    "dim": int,
    "count": int,
    "nprobe": int,
    "ivf_threshold": int,
    "trained_count": int,
    "files": dict,
}


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexMissingError(f"no index at {folder} ({MANIFEST} not found)")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or any(
        not isinstance(manifest.get(key), kind) for key, kind in _MANIFEST_KEYS.items()
    ):
        raise IndexCorruptError(f"{path} lacks a field or has one of the wrong type")
    if set(manifest["files"]) != {"index", "ids"} or any(
        not isinstance(e, dict) or not {"name", "sha256", "bytes"} <= e.keys() for e in manifest["files"].values()
    ):
        raise IndexCorruptError(f"{path} does not list the index and ids files")
    return manifest


def _read_checked(folder: Path, entry: dict[str, Any]) -> bytes:
    path = folder / str(entry["name"])
    if path.parent != folder:
        raise IndexCorruptError(f"{folder / MANIFEST} names a file outside its folder")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexCorruptError(f"index file {path} is missing") from None
    if len(data) != entry["bytes"]:
        raise IndexCorruptError(f"index file {path} has {len(data)} bytes, expected {entry['bytes']} (truncated?)")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise IndexCorruptError(f"index file {path} fails its sha256 checksum")
    return data
