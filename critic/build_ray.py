"""`critic build --engine ray`: RayEngine runs critic.build's per-record steps on a Ray cluster.

Ray Data runs two stages over shards of ``shard_size`` records, each on an actor pool (one actor per CPU,
``map_batches`` with a callable class, so each actor loads its model once):

1. embed: record -> text (composed when there is no description) -> text hash and int8 ONNX embedding;
2. encode: record + embedding -> lexical projection, date block, StyleVAE latent and index vector.

The actors return their rows to the driver, which writes each shard, once complete, as a Parquet file under
``home.shards_dir`` (no file system shared with the workers is needed). Shards go out in waves of
WAVE_PER_WORKER per worker, so the driver and the object store hold a bounded slice of the collection. A shard's
file name carries the digest of what it was computed from, so a rerun after an interrupted run skips the shards
already written; a worker that dies mid-shard is restarted by Ray and its batch retried. Between the stages the
store and the embedding cache ingest the embed shards, and the StyleVAE trains on the driver exactly as in
critic.build, on a seeded sample of at most ``sample_size`` records per side of the split. The index is filled
from the encode shards one at a time (IVF lists trained on a sample of them; IVF-PQ from 1M vectors).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from critic.atomic import write_atomically
from critic.build import Imported, checked_collection
from critic.embed import MODEL_ID, EmbeddingCache, embed_texts, load_encoder
from critic.home import Home
from critic.ray_cluster import ray_connection
from critic.records import Artwork, text_hash
from critic.split import Split
from critic.store import ArtworkStore
from critic.style_model import StyleModel
from index.store import VectorIndex, training_size

#: Records per shard: the unit of resumption and of one actor call (about 30 s of embedding on one core).
SHARD_SIZE = 10_000
#: Records per side of the split the StyleVAE trains and is measured on (the driver holds their inputs).
SAMPLE_SIZE = 100_000
#: Rows per actor call: a killed worker loses at most this much work.
BATCH_SIZE = 500
#: Shards sent to the cluster at once, per worker: enough to keep every actor busy, few enough that the driver
#: and the object store hold a bounded slice of the collection.
WAVE_PER_WORKER = 4
EMBED, ENCODE = "embed", "encode"


@dataclass(frozen=True)
class Shard:
    """Shard ``number`` of a stage: the file it is written to, and its ``size`` input rows, which ``load``
    reads only when the shard is computed (the driver holds one wave of shards at a time)."""

    number: int
    path: Path
    size: int
    load: Callable[[], pa.Table]


class RayEngine:
    """critic.build's per-record steps on Ray: joins the cluster at ``address`` (None: the one this process is
    connected to, else a local Ray on this machine's cores), with one actor per CPU, at most ``workers`` (a
    local Ray then gets that many CPUs).

    Example:
        >>> from critic.build import build
        >>> info = build(Home(Path("/tmp/home")), limit=2000, writer=False, engine=RayEngine(shard_size=500))
        >>> info["engine"]["shards"]["embed"]
        {'total': 4, 'computed': 4}
    """

    def __init__(self, address: str | None = None, shard_size: int = SHARD_SIZE, sample_size: int = SAMPLE_SIZE,
                 workers: int | None = None):
        if shard_size < 1 or sample_size < 1 or (workers is not None and workers < 1):
            raise ValueError(f"shard size, sample size and workers must be positive, got {shard_size}, "
                             f"{sample_size} and {workers}")
        self.address, self.shard_size, self.sample_size = address, shard_size, sample_size
        self.max_workers = workers
        self.workers = 0
        self.shards: dict[str, dict[str, int]] = {}
        self.sampled = 0
        self._embed_shards: list[Shard] = []

    @contextlib.contextmanager
    def session(self, progress: bool, log: Callable[[str], None]) -> Iterator[None]:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        with ray_connection(self.address, self.max_workers):
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self.workers = min(cpus, self.max_workers or cpus)
            log(f"ray: {self.workers} worker(s) on {len(ray.nodes())} node(s)")
            yield

    def embed(
        self, home: Home, imported: Imported, progress: bool, log: Callable[[str], None]
    ) -> tuple[list[Artwork], int]:
        self._embed_shards = _plan(home.shards_dir / EMBED, _record_tables(imported.records, self.shard_size))
        computed, newly_embedded = run_stage(EMBED, self._embed_shards, EmbedActor, (), self.workers, log)
        self.shards[EMBED] = {"total": len(self._embed_shards), "computed": computed}
        store, cache = ArtworkStore(home.store_location), EmbeddingCache(home.cache_path)
        for shard in self._embed_shards:  # the store ingests in shard order: the order of the catalogue
            table = pq.read_table(shard.path)
            store.upsert_many(_records(table))
            cache.put_many(dict(zip(table["text_hash"].to_pylist(), vector_matrix(table["embedding"]), strict=True)))
        return checked_collection(store, imported, log), newly_embedded

    def training_sample(self, records: Sequence[Artwork], split: Split) -> list[Artwork]:
        chosen = sampled_ids(split, self.sample_size)
        sample = [r for r in records if r.id in chosen]
        self.sampled = len(sample)
        return sample

    def embeddings(self, home: Home, records: Sequence[Artwork]) -> np.ndarray:
        # From the cache the shards filled; a record the catalogue lacks (added through the API) is embedded here.
        return embed_texts([r.text() for r in records], EmbeddingCache(home.cache_path))[0]

    def index(self, home: Home, records: Sequence[Artwork], style: StyleModel, log: Callable[[str], None]
              ) -> VectorIndex:
        identity = json.dumps(style.index_identity, sort_keys=True)
        inputs = [(functools.partial(pq.read_table, s.path), s.size, s.path.stem + identity)
                  for s in self._embed_shards]
        encode_shards = _plan(home.shards_dir / ENCODE, inputs)
        computed, _ = run_stage(ENCODE, encode_shards, EncodeActor, (style,), self.workers, log)
        self.shards[ENCODE] = {"total": len(encode_shards), "computed": computed}
        extra = _not_in_shards(records, encode_shards)  # added through the API: not in the catalogue
        count = sum(s.size for s in encode_shards) + len(extra)

        def batches() -> Iterator[tuple[list[str], np.ndarray, list[str]]]:
            for shard in encode_shards:
                table = pq.read_table(shard.path, columns=["id", "text_hash", "vector"])
                yield table["id"].to_pylist(), vector_matrix(table["vector"]), table["text_hash"].to_pylist()
            if extra:
                vectors = style.index_vectors(self.embeddings(home, extra), extra)
                yield [r.id for r in extra], vectors, [r.text_hash() for r in extra]

        training = _training_rows([s.path for s in encode_shards], count, style.index_dim)
        return VectorIndex.streamed(count, training, batches(), identity=style.index_identity)

    def describe(self) -> dict:
        return {"engine": {"name": "ray", "workers": self.workers, "shard_size": self.shard_size,
                           "sample_size": self.sample_size, "sampled": self.sampled, "shards": self.shards}}


def sampled_ids(split: Split, size: int, seed: int = 0) -> set[str]:
    """At most ``size`` ids of each side of ``split``, seeded: every id when a side holds no more.

    Example:
        >>> sorted(sampled_ids(Split(["a", "b", "c"], ["d"], []), 2))
        ['b', 'c', 'd']
    """
    chosen: set[str] = set()
    for side in (split.fit, split.validation, split.test):
        chosen.update(side if len(side) <= size else random.Random(seed).sample(side, size))
    return chosen


class EmbedActor:
    """Records (JSON) -> text hash and unit embedding; each actor loads the ONNX encoder once."""

    def __init__(self):
        self.encoder = load_encoder(threads=_assigned_cpus())

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = [r.text() for r in _records(batch)]
        vectors = self.encoder.encode(texts, normalize_embeddings=True)
        hashes = pa.array([text_hash(t) for t in texts], pa.string())
        return batch.append_column("text_hash", hashes).append_column("embedding", _vector_column(vectors))


class EncodeActor:
    """Records + embeddings -> StyleVAE latent and index vector, by the style model the driver trained."""

    def __init__(self, style: StyleModel):
        import torch  # the actor's own process: keep torch to the CPUs Ray gave it

        torch.set_num_threads(_assigned_cpus())
        self.style = style

    def __call__(self, batch: pa.Table) -> pa.Table:
        latents, vectors = self.style.encode(vector_matrix(batch["embedding"]), _records(batch))
        kept = batch.select(["shard", "row", "id", "text_hash"])
        return kept.append_column("latent", _vector_column(latents)).append_column("vector", _vector_column(vectors))


def run_stage(
    name: str,
    shards: Sequence[Shard],
    actor: type,
    args: tuple,
    workers: int,
    log: Callable[[str], None],
) -> tuple[int, int]:
    """Run ``actor`` over the rows of the shards not yet on disk and write each as it completes; returns how
    many shards and rows were computed."""
    todo = [s for s in shards if not s.path.exists()]
    log(f"{name}: {len(shards) - len(todo)} of {len(shards)} shard(s) already written")
    wave = WAVE_PER_WORKER * workers
    for start in range(0, len(todo), wave):
        _run_wave(name, todo[start : start + wave], len(shards), actor, args, workers, log)
    return len(todo), sum(s.size for s in todo)


def _run_wave(
    name: str, shards: Sequence[Shard], total: int, actor: type, args: tuple, workers: int, log: Callable[[str], None]
) -> None:
    by_number = {s.number: s for s in shards}
    batches = -(-sum(s.size for s in shards) // BATCH_SIZE)  # more actors than batches would idle
    # A block a batch: Ray Data gives each block to one actor, so whole shards as blocks would leave actors idle
    # whenever a wave holds fewer shards than workers (a collection under two shards ran on one of two actors).
    tables = [s.load() for s in shards]
    blocks = [t.slice(start, BATCH_SIZE) for t in tables for start in range(0, t.num_rows, BATCH_SIZE)]
    results = ray.data.from_arrow(blocks).map_batches(
        actor,
        fn_constructor_args=args,
        batch_size=BATCH_SIZE,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=min(workers, batches)),
        num_cpus=1,
    )
    pending: dict[int, list[pa.Table]] = {n: [] for n in by_number}
    for batch in results.iter_batches(batch_size=None, batch_format="pyarrow"):
        for number in pc.unique(batch["shard"]).to_pylist():
            pending[number].append(batch.filter(pc.equal(batch["shard"], number)))
            if sum(t.num_rows for t in pending[number]) == by_number[number].size:
                _write_shard(by_number[number].path, pa.concat_tables(pending.pop(number)).sort_by("row"))
                log(f"{name}: shard {number + 1}/{total} written")
    if pending:  # a retried batch never double-counts: rows are counted per shard against what was sent
        raise RuntimeError(f"{name}: shards {sorted(pending)} came back incomplete")


def _record_tables(records: Sequence[Artwork], shard_size: int) -> list[tuple[Callable[[], pa.Table], int, str]]:
    """The embed stage's input: ``shard_size`` records a table, each with what its shard is computed from."""
    inputs = []
    for start in range(0, len(records), shard_size):
        chunk = records[start : start + shard_size]
        rows = [json.dumps(r.to_dict(), sort_keys=True) for r in chunk]
        table = functools.partial(pa.table, {"row": pa.array(range(len(rows)), pa.int32()),
                                             "id": pa.array([r.id for r in chunk]), "record": pa.array(rows)})
        inputs.append((table, len(rows), MODEL_ID + "\n".join(rows)))
    return inputs


def _plan(folder: Path, inputs: Sequence[tuple[Callable[[], pa.Table], int, str]]) -> list[Shard]:
    """The shards of a stage, named by number and the digest of their input; files of other inputs go."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for number, (load, size, source) in enumerate(inputs):
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        path = folder / f"part-{number:05d}-{digest}.parquet"
        shards.append(Shard(number, path, size, functools.partial(_numbered, load, number)))
    wanted = {s.path for s in shards}
    for stale in folder.glob("part-*.parquet"):
        if stale not in wanted:
            stale.unlink()
    return shards


def _numbered(load: Callable[[], pa.Table], number: int) -> pa.Table:
    """The rows ``load`` gives, tagged with their shard's number (replacing the shard they came from)."""
    table = load()
    table = table.drop_columns([c for c in ("shard",) if c in table.column_names])
    return table.add_column(0, "shard", pa.array([number] * table.num_rows, pa.int32()))


def _not_in_shards(records: Sequence[Artwork], shards: Sequence[Shard]) -> list[Artwork]:
    sharded = {i for s in shards for i in pq.read_table(s.path, columns=["id"])["id"].to_pylist()}
    return [r for r in records if r.id not in sharded]


def _training_rows(paths: Sequence[Path], count: int, dim: int) -> np.ndarray:
    """A seeded sample of the index vectors in the encode shards, ``training_size(count)`` in all, spread over the
    shards in proportion to their size: what IVF lists train on."""
    share = training_size(count) / max(count, 1)
    parts = [np.zeros((0, dim), np.float32)]
    for number, path in enumerate(paths):
        vectors = vector_matrix(pq.read_table(path, columns=["vector"])["vector"])
        take = min(len(vectors), round(len(vectors) * share))
        parts.append(vectors[np.random.default_rng(number).choice(len(vectors), take, replace=False)])
    return np.concatenate(parts)


def _write_shard(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomically(path, sink.getvalue().to_pybytes())


def _records(table: pa.Table) -> list[Artwork]:
    return [Artwork.from_dict(json.loads(r)) for r in table["record"].to_pylist()]


def _vector_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])


def vector_matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column as a float32 (rows, width) matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = array.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(array), -1).astype(np.float32, copy=False)


def _assigned_cpus() -> int:
    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
